// @ts-check
// Files as the content blocks a user message carries (docs/protocol.md, "Attachments"):
// an image as base64 of its type, a PDF as a base64 document, a text file (.txt, .md,
// .csv, ...) as a text document. Each file is checked against what the server publishes
// (/healthz capabilities.attachments) before anything is read or sent, so a refusal
// names the file and the limit instead of a failed upload. A file is remembered by a
// reference (kind, media type, name, size, SHA-256): what the history and storage keep,
// while filestore.js keeps the bytes; each request rebuilds the blocks from them.

import { element } from "./dom.js";

/** @typedef {import("./record.js").Block} Block */
/** @typedef {import("./filestore.js").FileStore} FileStore */

/**
 * A file attached to a question: what the history keeps and sessionStorage saves.
 * @typedef {object} FileRef
 * @property {"image" | "document"} kind
 * @property {string} type the media type it is sent as (a text file's is text/plain)
 * @property {string} name
 * @property {number} size bytes
 * @property {string} hash SHA-256 of the bytes, hex
 */

/**
 * What the server accepts (`capabilities.attachments` of /healthz).
 * @typedef {object} Limits
 * @property {number} max_bytes each file, decoded
 * @property {number} max_upload_bytes a request's whole body
 * @property {number} max_count images and documents in one request
 * @property {string[]} image_types
 * @property {string[]} document_types
 */

/** A file the page will not send, with the sentence that says why. */
export class Refusal extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "Refusal";
  }
}

const PDF = "application/pdf";
const TEXT = "text/plain";
/** Text files whose browsers may report no type, or one other than text/*. */
const TEXT_NAMES = /\.(txt|text|md|markdown|csv|tsv|log)$/i;
/** The first bytes of each image type, which the server checks too. */
const SIGNATURES = [
  { type: "image/png", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: "image/jpeg", bytes: [0xff, 0xd8, 0xff] },
  { type: "image/gif", bytes: [0x47, 0x49, 0x46, 0x38] },
  { type: "image/webp", bytes: [0x52, 0x49, 0x46, 0x46] },
];
const PDF_SIGNATURE = [0x25, 0x50, 0x44, 0x46, 0x2d];
/** A document's title is at most this long on the server. */
const MAX_TITLE = 500;
/** Bytes per btoa call: a multiple of 3, so the pieces join into one base64 text. */
const BASE64_CHUNK = 3 * 8192;

/** The types the page names in a refusal, for people rather than for parsers. */
const TYPE_NAMES = /** @type {Record<string, string>} */ ({
  "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP",
  [PDF]: "PDF", [TEXT]: "text",
});

/**
 * The server's limits from /healthz capabilities, or null when it takes no attachments.
 * @param {unknown} reported
 * @returns {Limits | null}
 */
export function limitsOf(reported) {
  if (typeof reported !== "object" || reported === null) return null;
  const limits = /** @type {Record<string, unknown>} */ (reported);
  const number = (/** @type {string} */ key) => {
    const value = limits[key];
    return typeof value === "number" && value > 0 ? value : null;
  };
  const strings = (/** @type {string} */ key) => {
    const value = limits[key];
    return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
  };
  const maxBytes = number("max_bytes");
  const maxUpload = number("max_upload_bytes");
  const maxCount = number("max_count");
  if (maxBytes === null || maxUpload === null || maxCount === null) return null;
  return {
    max_bytes: maxBytes,
    max_upload_bytes: maxUpload,
    max_count: maxCount,
    image_types: strings("image_types"),
    document_types: strings("document_types"),
  };
}

/**
 * "900 bytes", "12.5 KiB", "20.0 MiB".
 * @param {number} bytes
 */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** What the `accept` attribute of the file input lists. @param {Limits} limits */
export function acceptOf(limits) {
  const accepted = [...limits.image_types, ...limits.document_types.filter((type) => type !== TEXT)];
  if (limits.document_types.includes(TEXT)) accepted.push("text/*", ".txt", ".md", ".csv");
  return accepted.join(",");
}

/** "PNG, JPEG, PDF or text" from the types the server takes. @param {Limits} limits */
function acceptedNames(limits) {
  const names = [...limits.image_types, ...limits.document_types].map((type) => TYPE_NAMES[type] ?? type);
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : names.join("");
}

/**
 * How a file would be sent, from what the browser says of it, before reading it.
 * @param {File} file
 * @param {Limits} limits
 * @returns {{kind: "image" | "document", type: string}}
 */
function kindOf(file, limits) {
  if (limits.image_types.includes(file.type)) return { kind: "image", type: file.type };
  const pdf = file.type === PDF || (file.type === "" && /\.pdf$/i.test(file.name));
  if (pdf && limits.document_types.includes(PDF)) return { kind: "document", type: PDF };
  const text = file.type.startsWith("text/") || (TEXT_NAMES.test(file.name) && !file.type.startsWith("image/"));
  if (text && limits.document_types.includes(TEXT)) return { kind: "document", type: TEXT };
  const what = file.type || "unknown type";
  throw new Refusal(`${file.name} (${what}) cannot be attached: only ${acceptedNames(limits)} files can.`);
}

/**
 * @param {Uint8Array} bytes
 * @param {number[]} signature
 */
function startsWith(bytes, signature) {
  return signature.every((byte, index) => bytes[index] === byte);
}

/**
 * The image type its first bytes say, when it is one the server takes. A file named
 * .png that is a JPEG is sent as the JPEG it is.
 * @param {Uint8Array} bytes
 * @param {Limits} limits
 */
function sniffImage(bytes, limits) {
  for (const { type, bytes: signature } of SIGNATURES) {
    if (!startsWith(bytes, signature) || !limits.image_types.includes(type)) continue;
    if (type === "image/webp" && String.fromCharCode(...bytes.subarray(8, 12)) !== "WEBP") continue;
    return type;
  }
  return null;
}

/**
 * Base64 of any size, a piece at a time: one String.fromCharCode of a whole file would
 * exceed the arguments a call may take.
 * @param {Uint8Array} bytes
 */
export function base64(bytes) {
  /** @type {string[]} */
  const pieces = [];
  for (let at = 0; at < bytes.length; at += BASE64_CHUNK) {
    const piece = bytes.subarray(at, at + BASE64_CHUNK);
    pieces.push(btoa(String.fromCharCode.apply(null, /** @type {number[]} */ (/** @type {unknown} */ (piece)))));
  }
  return pieces.join("");
}

/** @param {ArrayBuffer} bytes */
async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The bytes a request carries for a file: its base64, or a text document's text.
 * @param {FileRef} ref
 */
export function encodedSize(ref) {
  return ref.type === TEXT ? ref.size : Math.ceil(ref.size / 3) * 4;
}

/**
 * Read and check one file: its reference and its bytes, or a Refusal. Size, type and
 * count are checked before the file is read.
 * @param {File} file
 * @param {Limits} limits
 * @param {FileRef[]} others the files already in the conversation and the composer
 * @returns {Promise<{ref: FileRef, bytes: ArrayBuffer}>}
 */
export async function readFile(file, limits, others) {
  const { kind, type: declared } = kindOf(file, limits);
  if (file.size > limits.max_bytes) {
    throw new Refusal(`${file.name} is ${formatSize(file.size)}: the server accepts files of at most ${formatSize(limits.max_bytes)}.`);
  }
  if (others.length + 1 > limits.max_count) {
    throw new Refusal(`${file.name} was not attached: a conversation may hold at most ${limits.max_count} files, and this one has ${others.length}.`);
  }
  const upload = others.reduce((sum, ref) => sum + encodedSize(ref), 0);
  const size = kind === "image" || declared === PDF ? Math.ceil(file.size / 3) * 4 : file.size;
  if (upload + size > limits.max_upload_bytes) {
    throw new Refusal(`${file.name} was not attached: with the conversation's other files it would exceed the ${formatSize(limits.max_upload_bytes)} the server accepts in one request.`);
  }
  const bytes = await file.arrayBuffer();
  const view = new Uint8Array(bytes);
  let type = declared;
  if (kind === "image") {
    const sniffed = sniffImage(view, limits);
    if (!sniffed) throw new Refusal(`${file.name} is not a ${TYPE_NAMES[declared] ?? declared} image: its content is not that type's.`);
    type = sniffed;
  } else if (type === PDF && !startsWith(view, PDF_SIGNATURE)) {
    throw new Refusal(`${file.name} is not a PDF: its content does not start as a PDF does.`);
  } else if (type === TEXT) {
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(view);
    } catch {
      throw new Refusal(`${file.name} is not UTF-8 text, so it cannot be sent as a text document.`);
    }
    if (text.trim() === "") throw new Refusal(`${file.name} is empty.`);
  }
  const ref = { kind, type, name: file.name || (kind === "image" ? "image" : "document"), size: file.size, hash: await sha256(bytes) };
  return { ref, bytes };
}

/**
 * A file's content block, from its bytes.
 * @param {FileRef} ref
 * @param {ArrayBuffer} bytes
 * @returns {Block}
 */
export function blockOf(ref, bytes) {
  const view = new Uint8Array(bytes);
  if (ref.kind === "image") {
    return { type: "image", source: { type: "base64", media_type: ref.type, data: base64(view) } };
  }
  const source = ref.type === TEXT
    ? { type: "text", media_type: TEXT, data: new TextDecoder().decode(view) }
    : { type: "base64", media_type: ref.type, data: base64(view) };
  return { type: "document", title: ref.name.slice(0, MAX_TITLE), source };
}

/**
 * What stands in a request for a file whose bytes this browser no longer has.
 * @param {FileRef} ref
 */
function missingNote(ref) {
  return `[The ${ref.kind} "${ref.name}" (${ref.type}, ${formatSize(ref.size)}) was attached here, `
    + "but this browser no longer has it, so it is not sent again.]";
}

/**
 * A user message's content: the files' blocks, then the question (the API advises files
 * first). A question without files stays a plain string.
 * @param {string} question
 * @param {FileRef[]} refs
 * @param {FileStore} files
 * @param {FileRef[]} missing collects the files whose bytes are gone
 * @returns {Promise<string | Block[]>}
 */
export async function contentOf(question, refs, files, missing) {
  if (refs.length === 0) return question;
  /** @type {Block[]} */
  const content = [];
  for (const ref of refs) {
    const bytes = await files.bytes(ref.hash);
    if (bytes) {
      content.push(blockOf(ref, bytes));
    } else {
      missing.push(ref);
      content.push({ type: "text", text: missingNote(ref) });
    }
  }
  if (question.trim() !== "") content.push({ type: "text", text: question });
  return content;
}

/**
 * A file as the composer and the question's bubble show it: an image's thumbnail, or a
 * document's type; then its name and size. The thumbnail's picture is set by showFile.
 * @param {FileRef} ref
 */
export function fileChip(ref) {
  const chip = element("li", "attachment");
  chip.dataset.kind = ref.kind;
  chip.dataset.hash = ref.hash;
  chip.title = `${ref.name} · ${formatSize(ref.size)}`;
  if (ref.kind === "image") {
    const img = /** @type {HTMLImageElement} */ (element("img", "attachment-thumb"));
    img.alt = ref.name;
    chip.append(img);
  } else {
    chip.append(element("span", "attachment-icon", ref.type === PDF ? "PDF" : "TXT"));
  }
  const about = element("span", "attachment-about");
  about.append(element("span", "attachment-name", ref.name), element("span", "attachment-size", formatSize(ref.size)));
  chip.append(about);
  return chip;
}

/**
 * Fill a chip from its file's bytes: an image's picture, as a data: URL (the page's CSP
 * allows img-src data:). A chip whose bytes are gone says so.
 * @param {HTMLElement} chip
 * @param {FileRef} ref
 * @param {FileStore} files
 */
export async function showFile(chip, ref, files) {
  const bytes = await files.bytes(ref.hash);
  if (!bytes) {
    chip.classList.add("missing");
    chip.title = `${chip.title} · no longer in this browser`;
    return;
  }
  const img = chip.querySelector("img");
  if (img && ref.kind === "image") img.src = `data:${ref.type};base64,${base64(new Uint8Array(bytes))}`;
}
