// @ts-check
// Markdown to DOM, safely. marked turns the model's Markdown into HTML with raw HTML
// switched off (escaped as text) and only http(s) links; DOMPurify then keeps an
// allowlist of the elements Markdown produces, whatever marked emits. Neither library
// evaluates code or writes style attributes, so the page's CSP (script-src 'self',
// style-src 'self') holds unchanged (web/static/vendor/README.md).

import DOMPurify from "./vendor/purify.es.mjs";
import { Lexer, Marked } from "./vendor/marked.esm.js";

/** @typedef {import("./vendor/marked.esm.js").Token} Token */
/** @typedef {import("./vendor/marked.esm.js").Tokens.Generic} GenericToken */

/**
 * Citation markers travel inside the Markdown source as CITE_OPEN digits CITE_CLOSE:
 * two private-use characters, removed from the model's own text (cleanText), so only a
 * `citation` event can make one.
 */
export const CITE_OPEN = "\uE000";
export const CITE_CLOSE = "\uE001";
const SENTINELS = /[\uE000\uE001]/g;
const CITE_MARK = /\uE000\d+\uE001/g;

const SAFE_URL = /^https?:\/\//i;

/** @param {string} text */
export function escapeHtml(text) {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Whether `url` may be a link target: absolute http(s) only. */
export function isSafeUrl(/** @type {unknown} */ url) {
  return typeof url === "string" && SAFE_URL.test(url);
}

/** The model's text with the citation sentinels removed (they are ours alone). */
export function cleanText(/** @type {string} */ text) {
  return text.replace(SENTINELS, "");
}

/** @type {import("./vendor/marked.esm.js").TokenizerAndRendererExtension} */
const citeExtension = {
  name: "cite",
  level: "inline",
  start(src) {
    const at = src.indexOf(CITE_OPEN);
    return at < 0 ? undefined : at;
  },
  tokenizer(src) {
    const match = /^\uE000(\d+)\uE001/.exec(src);
    return match ? { type: "cite", raw: match[0], n: Number(match[1]) } : undefined;
  },
  renderer(token) {
    // Linked to its source by linkCitations(), with DOM calls, after sanitizing.
    return `<sup class="cite" data-cite="${Number(token.n)}">${Number(token.n)}</sup>`;
  },
};

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  extensions: [citeExtension],
  renderer: {
    // Raw HTML from the model is shown as the text it is, never parsed.
    html(token) {
      const text = escapeHtml(token.text);
      return "block" in token && token.block ? `<p>${text}</p>\n` : text;
    },
    link(token) {
      const label = this.parser.parseInline(token.tokens);
      if (!isSafeUrl(token.href)) return label;
      const title = token.title ? ` title="${escapeHtml(token.title)}"` : "";
      return `<a href="${escapeHtml(token.href)}"${title}>${label}</a>`;
    },
    // Images are not loaded (a tracking pixel, and img-src is 'self'): shown as a link.
    image(token) {
      const label = escapeHtml(token.text || token.href);
      if (!isSafeUrl(token.href)) return label;
      return `<a href="${escapeHtml(token.href)}" class="image-link">${label}</a>`;
    },
    code(token) {
      const text = token.text.replace(CITE_MARK, "");
      const lang = (token.lang ?? "").match(/^\S*/)?.[0] ?? "";
      const cls = lang ? ` class="language-${escapeHtml(lang)}"` : "";
      return `<pre><code${cls}>${escapeHtml(text)}\n</code></pre>\n`;
    },
    codespan(token) {
      return `<code>${escapeHtml(token.text.replace(CITE_MARK, ""))}</code>`;
    },
  },
});

// What Markdown produces, and nothing else: no forms, media, frames, styles or SVG.
const ALLOWED_TAGS = [
  "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
  "pre", "code", "em", "strong", "del", "a", "table", "thead", "tbody", "tr", "th", "td",
  "input", "sup",
];
const ALLOWED_ATTR = [
  "href", "title", "align", "start", "type", "checked", "disabled", "class", "data-cite",
];

const purify = DOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node instanceof HTMLAnchorElement) {
    if (SAFE_URL.test(node.getAttribute("href") ?? "")) {
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    } else {
      node.removeAttribute("href");
    }
  } else if (node instanceof HTMLInputElement) {
    // A task list's checkbox: shown, never editable.
    node.type = "checkbox";
    node.disabled = true;
  }
});

/**
 * Sanitize marked's HTML into a fragment of this document.
 * @param {string} html
 * @returns {DocumentFragment}
 */
function sanitize(html) {
  return purify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    // DOMPurify's own URI check stays (it also vets non-URL attributes such as align);
    // the hook above narrows links to http(s).
    RETURN_DOM_FRAGMENT: true,
  });
}

/**
 * Container levels (block quotes, list items) one line may open. marked parses each
 * level by recursion, so a line of thousands of `>` would exhaust the stack; the markers
 * past this depth are swapped for look-alikes that Markdown gives no meaning, which keeps
 * the text readable and its length unchanged (offsets into the source stay valid).
 */
export const MAX_NESTING = 16;
const CONTAINER_PREFIX = /^(?:[ \t]*(?:>|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)))+/;
const CONTAINER_MARKER = /(>)|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)/g;
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
/** @type {Record<string, string>} */
const INERT_MARKER = { ">": "\u203A", "-": "\u2010", "+": "\u02D6", "*": "\u2217", ".": "\u2024", ")": "\uFF09" };

/**
 * `text` with every line's container markers past MAX_NESTING made inert. Lines inside a
 * top-level fenced code block are code, and left exactly as they are.
 * @param {string} text
 */
export function boundNesting(text) {
  if (!/[>\-+*.)]/.test(text)) return text;
  /** @type {RegExp | null} */
  let fenceClose = null;
  let changed = false;
  const lines = text.split("\n").map((line) => {
    if (fenceClose) {
      if (fenceClose.test(line)) fenceClose = null;
      return line;
    }
    const fence = FENCE_OPEN.exec(line);
    if (fence) {
      fenceClose = new RegExp(`^ {0,3}${fence[1][0]}{${fence[1].length},}[ \\t]*$`);
      return line;
    }
    const prefix = CONTAINER_PREFIX.exec(line)?.[0];
    if (prefix === undefined) return line;
    let depth = 0;
    const bounded = prefix.replace(CONTAINER_MARKER, (marker) => {
      depth += 1;
      if (depth <= MAX_NESTING) return marker;
      const last = marker.at(-1) ?? "";
      return marker.slice(0, -1) + (INERT_MARKER[last] ?? last);
    });
    if (depth <= MAX_NESTING) return line;
    changed = true;
    return bounded + line.slice(prefix.length);
  });
  return changed ? lines.join("\n") : text;
}

/**
 * An inline run (a paragraph's text, a heading, a table cell) with many emphasis, link or
 * code delimiters is lexed this many characters at a time. marked scans ahead from each
 * delimiter, so a run's cost grows with its delimiters times its length, and nests by
 * recursion; in pieces, the cost is linear in the reply and the nesting is bounded.
 * Emphasis cannot span two pieces, which only such a run loses: prose with a few bold
 * words or links is lexed whole.
 */
const INLINE_PIECE = 256;
const FEW_DELIMITERS = 64;

/**
 * Whether `text` holds more than FEW_DELIMITERS emphasis, link or code delimiters.
 * @param {string} text
 */
function manyDelimiters(text) {
  let count = 0;
  for (let at = 0; at < text.length; at += 1) {
    const c = text.charCodeAt(at);
    // * _ ~ ` [ ]
    if ((c === 42 || c === 95 || c === 126 || c === 96 || c === 91 || c === 93) && ++count > FEW_DELIMITERS) {
      return true;
    }
  }
  return false;
}

/**
 * Where to cut `text` between `from` and `to`: after the last white space that a letter
 * follows, else before the last character that cannot start a block, else at `to`; never
 * inside a citation marker or a surrogate pair.
 * @param {string} text
 * @param {number} from
 * @param {number} to
 */
function cutPoint(text, from, to) {
  const inert = (/** @type {number} */ at) => !/[\s#>\-+*=|`~<\d[\]!\\_:]/.test(text[at] ?? "");
  let cut = 0;
  for (let at = to; at > from && cut === 0; at -= 1) {
    if (/\s/.test(text[at - 1]) && /\p{L}/u.test(text[at] ?? "")) cut = at;
  }
  for (let at = to; at > from && cut === 0; at -= 1) if (inert(at)) cut = at;
  if (cut === 0) cut = to;
  const open = text.lastIndexOf(CITE_OPEN, cut - 1);
  if (open > text.lastIndexOf(CITE_CLOSE, cut - 1) && open > from) cut = open;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
  return cut;
}

/** marked's lexer with inline runs lexed in pieces of INLINE_PIECE characters. */
class BoundedLexer extends Lexer {
  /**
   * @param {string} src
   * @param {Token[]} [tokens]
   * @returns {Token[]}
   */
  inlineTokens(src, tokens = []) {
    if (src.length <= INLINE_PIECE || !manyDelimiters(src)) return super.inlineTokens(src, tokens);
    let at = 0;
    while (src.length - at > INLINE_PIECE) {
      const cut = cutPoint(src, at + INLINE_PIECE / 2, at + INLINE_PIECE);
      super.inlineTokens(src.slice(at, cut), tokens);
      at = cut;
    }
    return super.inlineTokens(at === 0 ? src : src.slice(at), tokens);
  }
}

/** @typedef {import("./vendor/marked.esm.js").Links} Links */

/**
 * A lexer seeded with the reference definitions known so far.
 * @param {Links} links
 */
function lexer(links) {
  const bounded = new BoundedLexer({ ...marked.defaults });
  Object.assign(bounded.tokens.links, links);
  return bounded;
}

/**
 * Markdown to tokens, blocks and their inline content.
 * @param {string} source
 * @param {Links} links
 */
function lex(source, links) {
  return lexer(links).lex(boundNesting(source));
}

/**
 * Markdown to its blocks only (their inline content left unlexed): cheap, for deciding
 * which blocks are final.
 * @param {string} source
 * @param {Links} links
 */
function lexBlocks(source, links) {
  const blockLexer = lexer(links);
  const tokens = blockLexer.blockTokens(boundNesting(source), []);
  return { tokens, links: blockLexer.tokens.links };
}

/** @param {Token[]} tokens */
function toHtml(tokens) {
  return marked.parser(tokens);
}

/**
 * Markdown source to sanitized DOM, with code blocks given their Copy button and
 * citation markers linked.
 * @param {string} html from toHtml
 * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
 */
function build(html, source) {
  const fragment = sanitize(html);
  for (const pre of fragment.querySelectorAll("pre")) decorateCode(pre);
  for (const sup of fragment.querySelectorAll("sup.cite")) linkCitation(sup, source);
  return fragment;
}

/** @param {HTMLPreElement} pre */
function decorateCode(pre) {
  const block = document.createElement("div");
  block.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const lang = document.createElement("span");
  lang.className = "code-lang";
  const code = pre.querySelector("code");
  lang.textContent = code?.className.match(/(?:^| )language-(\S+)/)?.[1] ?? "";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code ghost";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", lang.textContent ? `Copy ${lang.textContent} code` : "Copy code");
  head.append(lang, copy);
  pre.replaceWith(block);
  block.append(head, pre);
}

/**
 * @param {Element} sup
 * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
 */
function linkCitation(sup, source) {
  const n = Number(sup.getAttribute("data-cite"));
  const cited = source(n);
  sup.textContent = "";
  const label = `[${n}]`;
  if (cited && isSafeUrl(cited.url)) {
    const a = document.createElement("a");
    a.href = /** @type {string} */ (cited.url);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = label;
    a.title = cited.title ?? a.hostname;
    sup.append(a);
  } else {
    sup.textContent = label;
    if (cited?.title) sup.setAttribute("title", cited.title);
  }
}

/**
 * The code inside a Copy button's block: exactly the fence's content, without the final
 * newline the renderer adds.
 * @param {Element} button
 */
export function codeOf(button) {
  const code = button.closest(".code-block")?.querySelector("pre code");
  return (code?.textContent ?? "").replace(/\n$/, "");
}

/** Blocks kept live at the end of a streaming text (see MarkdownView.render). */
const LIVE_BLOCKS = 2;
/**
 * Final blocks are grouped this many to a chunk, each chunk an element with
 * `content-visibility: auto`: the browser skips the layout and paint of chunks out of
 * view, and a frame's layout walks a few chunks rather than every block of a long reply.
 */
const CHUNK_NODES = 48;
/**
 * Source lexed at a time when more than this has not been rendered yet (a reply restored
 * from storage, or text arriving faster than frames): a step's cost is bounded by it.
 */
const WINDOW = 4096;
/**
 * A block longer than this (a paragraph, a list, a block quote; not code or a table) is
 * rendered as several, cut where splitPoint says: a block is rendered whole, and a
 * growing one would otherwise be rendered anew, whole, on every frame.
 */
const LONG_BLOCK = 2048;
const UNSPLIT = new Set(["code", "table", "space", "hr", "def"]);
/** Rendering steps in one frame stop after this long (ms); the rest waits a frame. */
const FRAME_BUDGET_MS = 12;

/**
 * One streamed Markdown text, rendered at most once per animation frame, and only its
 * end: the source is lexed into blocks; blocks followed by LIVE_BLOCKS others are final,
 * rendered once and kept, and only the remaining tail is lexed and rendered again on
 * each frame. A frame's cost is therefore bounded by the last blocks (a long paragraph
 * is cut into several, see LONG_BLOCK), not by the whole reply, and a backlog is
 * rendered a window at a time within FRAME_BUDGET_MS per frame. At finish() the tail is
 * rendered as final; a reference definition that came after blocks it may serve were
 * final makes the whole text render again. Rendering never throws: an error shows the
 * text as it is, and the turn that owns it settles as usual.
 */
export class MarkdownView {
  /**
   * @param {HTMLElement} root the element that receives the rendered blocks
   * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
   *   the citation numbered n
   * @param {() => void} [onRender] after each render (to follow the text down)
   */
  constructor(root, source, onRender) {
    this.root = root;
    this.sourceOf = source;
    this.onRender = onRender ?? (() => {});
    this.source = "";
    /** Characters of `source` rendered into final blocks. */
    this.finalLength = 0;
    this.liveHtml = "";
    /** @type {ChildNode[]} */
    this.liveNodes = [];
    /** @type {HTMLElement | null} the chunk final blocks go into */
    this.chunk = null;
    this.frame = 0;
    this.pendingCr = false;
    /** The text is complete: nothing is held live any more. */
    this.complete = false;
    /** @type {Links} every reference definition seen so far */
    this.links = Object.create(null);
    /** A definition came after some blocks were final: render again at finish(). */
    this.linksLate = false;
    /** @type {HTMLElement | null} the text as it is, once rendering has failed */
    this.plain = null;
  }

  /** Append model text (sentinels removed, line endings normalised as marked would). */
  append(/** @type {string} */ text) {
    let clean = cleanText(text);
    if (this.pendingCr && clean.startsWith("\n")) clean = clean.slice(1);
    this.pendingCr = clean.endsWith("\r");
    // marked turns \r\n and \r into \n itself; doing it here keeps lengths aligned.
    this.source += clean.replace(/\r\n?/g, "\n");
    this.schedule();
  }

  /**
   * Put citation number n at the end of the text, before its trailing white space so
   * it stays on the sentence it supports.
   * @param {number} n
   */
  cite(n) {
    const mark = `${CITE_OPEN}${n}${CITE_CLOSE}`;
    const trimmed = this.source.trimEnd();
    const at = Math.max(trimmed.length, this.finalLength);
    this.source = this.source.slice(0, at) + mark + this.source.slice(at);
    this.schedule();
  }

  get empty() {
    return this.source.trim() === "";
  }

  schedule() {
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  /** Render what has arrived now, within this frame's budget (called by schedule). */
  render() {
    if (this.frame !== 0) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    try {
      if (this.plain) {
        this.plain.textContent = plainText(this.source);
      } else {
        const until = performance.now() + FRAME_BUDGET_MS;
        let more = this.step();
        while (more && performance.now() < until) more = this.step();
        if (more) this.schedule();
      }
    } catch (error) {
      this.fail(error);
    }
    this.onRender();
  }

  /**
   * Render the next final blocks, and the live tail when it is all that is left.
   * @returns {boolean} whether more is ready to render now
   */
  step() {
    const tail = this.source.slice(this.finalLength);
    let src = tail;
    /** @type {Token[] | null} */
    let blocks = null;
    let live = this.complete ? 0 : LIVE_BLOCKS;
    for (let size = WINDOW; size < tail.length && !blocks; size *= 2) {
      // Lex a window of the backlog: its last blocks may be cut short, so they wait.
      const windowSrc = tail.slice(0, cutPoint(tail, size / 2, size));
      const windowBlocks = this.blocks(windowSrc);
      if (finalCount(windowBlocks, LIVE_BLOCKS) > 0 || isLong(windowBlocks[0])) {
        [src, blocks, live] = [windowSrc, windowBlocks, LIVE_BLOCKS];
      }
    }
    blocks ??= this.blocks(src);
    const windowed = src.length < tail.length;
    const cut = finalCount(blocks, live);
    let before = 0;
    let finalLength = 0;
    for (const [index, block] of blocks.entries()) {
      if (isLong(block)) {
        this.addFinal(src.slice(0, before + splitPoint(block)));
        return true;
      }
      before += block.raw.length;
      if (index < cut) finalLength = before;
    }
    if (finalLength > 0) this.addFinal(src.slice(0, finalLength));
    if (windowed) return true;
    const liveHtml = toHtml(lex(src.slice(finalLength), this.links));
    if (liveHtml !== this.liveHtml || finalLength > 0) this.replaceLive(liveHtml);
    return false;
  }

  /**
   * The blocks of `src`, noting reference definitions that were not known before.
   * @param {string} src
   */
  blocks(src) {
    const { tokens, links } = lexBlocks(src, this.links);
    for (const [label, link] of Object.entries(links)) {
      if (label in this.links) continue;
      this.links[label] = link;
      if (this.finalLength > 0) this.linksLate = true;
    }
    return tokens;
  }

  /**
   * Render `text`, the next part of the source, as final blocks.
   * @param {string} text
   */
  addFinal(text) {
    this.appendFinal(build(toHtml(lex(text, this.links)), this.sourceOf));
    this.finalLength += text.length;
  }

  /**
   * Put final blocks after those before them, in chunks of CHUNK_NODES.
   * @param {DocumentFragment} fragment
   */
  appendFinal(fragment) {
    for (const node of [...fragment.childNodes]) {
      if (node instanceof Text && node.data.trim() === "") continue; // between blocks
      if (!this.chunk || this.chunk.childNodes.length >= CHUNK_NODES) {
        this.chunk = document.createElement("div");
        this.chunk.className = "md-chunk";
        this.root.insertBefore(this.chunk, this.liveNodes[0] ?? null);
      }
      this.chunk.append(node);
    }
  }

  /** @param {string} html */
  replaceLive(html) {
    for (const node of this.liveNodes) node.remove();
    const fragment = build(html, this.sourceOf);
    this.liveNodes = [...fragment.childNodes];
    this.root.append(fragment);
    this.liveHtml = html;
  }

  /** Forget what is rendered: the next render starts from the beginning. */
  reset() {
    this.root.replaceChildren();
    this.chunk = null;
    this.liveNodes = [];
    this.liveHtml = "";
    this.finalLength = 0;
    this.linksLate = false;
  }

  /**
   * Rendering failed (marked or DOMPurify threw): show the text as it is, escaped by
   * being a text node, and keep it up to date from now on.
   * @param {unknown} error
   */
  fail(error) {
    console.warn("Markdown rendering failed; the text is shown as it is.", error);
    this.reset();
    this.plain = document.createElement("div");
    this.plain.className = "md-plain";
    this.plain.textContent = plainText(this.source);
    this.root.append(this.plain);
  }

  /**
   * The text is complete: render its tail as final blocks (over more frames when a long
   * backlog is left). Never throws, so the turn that calls it always settles.
   */
  finish() {
    this.complete = true;
    try {
      if (this.linksLate) this.reset();
      this.render();
    } catch (error) {
      this.fail(error);
    }
  }
}

/** @param {Token | undefined} block */
function isLong(block) {
  return block !== undefined && block.raw.length > LONG_BLOCK && !UNSPLIT.has(block.type);
}

/**
 * Where to cut a long block: a paragraph where cutPoint says; a list or a quote at the
 * start of a line that begins as the block does (its next item, its next quoted line),
 * else of any line, else where cutPoint says.
 * @param {Token} block
 */
function splitPoint(block) {
  const { raw } = block;
  const from = LONG_BLOCK / 2;
  if (block.type !== "paragraph") {
    let line = 0;
    for (let at = raw.lastIndexOf("\n", LONG_BLOCK - 1); at >= from; at = raw.lastIndexOf("\n", at - 1)) {
      if (raw[at + 1] === raw[0]) return at + 1;
      if (line === 0) line = at + 1;
    }
    if (line > 0) return line;
  }
  return cutPoint(raw, from, LONG_BLOCK);
}

/**
 * How many of `blocks` are final when `live` non-space blocks are held back.
 * @param {Token[]} blocks
 * @param {number} live
 */
function finalCount(blocks, live) {
  let cut = blocks.length;
  for (let held = 0; cut > 0 && held < live;) {
    cut -= 1;
    if (blocks[cut].type !== "space") held += 1;
  }
  return cut;
}

/**
 * The source as plain text: citation markers as "[n]".
 * @param {string} source
 */
function plainText(source) {
  return source.replace(/\uE000(\d+)\uE001/g, "[$1]");
}
