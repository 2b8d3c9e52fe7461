// @ts-check
// The transcript's DOM. Model text reaches the page in two ways only: as text nodes
// (questions, thinking, search results, sources) or through markdown.js, which escapes
// raw HTML and sanitizes what it renders. Nothing from the model is ever assigned to
// innerHTML here.

import { fileChip } from "./attachments.js";
import { codeOf } from "./markdown.js";
import { ReplyParts } from "./parts.js";

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./metrics.js").ReplyMetrics} ReplyMetrics */

/** Status of a reply -> the text shown in its status pill. */
const STATUS_TEXT = {
  connecting: "Connecting…",
  streaming: "Streaming…",
  reconnecting: "Reconnecting…",
  done: "Done",
  cancelled: "Stopped",
  error: "Error",
  interrupted: "Interrupted",
  refused: "Declined",
};
/** @typedef {keyof typeof STATUS_TEXT} Status */

/** Distance from the bottom (px) within which the transcript follows new text. */
const FOLLOW_SLACK = 48;
/** How long a Copy button says "Copied" (ms). */
const COPIED_MS = 1500;

/**
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} selector
 * @param {new (...args: any[]) => T} type
 * @returns {T}
 */
export function find(root, selector, type) {
  const node = root.querySelector(selector);
  if (!(node instanceof type)) throw new Error(`The page has no ${selector}`);
  return node;
}

/**
 * @param {string} id
 * @returns {HTMLElement} the first element of a <template>'s content, cloned
 */
function cloneTemplate(id) {
  const template = document.getElementById(id);
  if (!(template instanceof HTMLTemplateElement)) throw new Error(`The page has no #${id}`);
  return /** @type {HTMLElement} */ (template.content.firstElementChild?.cloneNode(true));
}

export class TranscriptView {
  /**
   * @param {HTMLElement} root the #transcript element
   * @param {HTMLButtonElement | null} [jump] the "jump to latest" button, shown while the
   *   reader has scrolled up from the newest text
   */
  constructor(root, jump = null) {
    this.root = root;
    this.jump = jump;
    // Following: true while the reader is at the bottom. Tracked from scroll events, so a
    // frame that adds text never has to measure the layout before changing it.
    this.pinned = true;
    this.followFrame = 0;
    /** Where the view was after the last scroll event or scroll of ours. */
    this.lastTop = 0;
    root.addEventListener("scroll", () => this.onScroll(), { passive: true });
    // Content that grows in one step (a list, Sources, an error) is followed before it is
    // painted, whatever its size and whichever code added it.
    this.resizes = new ResizeObserver(() => {
      if (this.pinned) this.scrollToEnd();
    });
    /** @type {Element | null} the newest turn, the one that grows */
    this.observed = null;
    jump?.addEventListener("click", () => {
      this.scrollToEnd();
      jump.blur();
    });
    root.addEventListener("click", (event) => {
      const target = event.target;
      const button = target instanceof Element ? target.closest(".copy-code") : null;
      if (button instanceof HTMLButtonElement) void copyCode(button);
    });
  }

  /**
   * Only the reader scrolling up stops the following: growth below the view moves no
   * scroll position, and a scroll of ours goes down, so neither can be taken for it.
   */
  onScroll() {
    const root = this.root;
    const top = root.scrollTop;
    if (root.scrollHeight - top - root.clientHeight <= FOLLOW_SLACK) this.pinned = true;
    else if (top < this.lastTop) this.pinned = false;
    this.lastTop = top;
    if (this.jump) this.jump.hidden = this.pinned;
  }

  /**
   * @param {string} text
   * @param {FileRef[]} [files] sent with it, shown above it
   * @param {(chip: HTMLElement, ref: FileRef) => void} [fill] shows a file's picture
   * @returns {HTMLElement} the new user turn
   */
  addUserTurn(text, files = [], fill) {
    this.setEmpty(false);
    const node = cloneTemplate("user-turn-template");
    const bubble = find(node, ".bubble", HTMLElement);
    bubble.textContent = text;
    bubble.hidden = text === "" && files.length > 0;
    const list = find(node, ".attachments", HTMLElement);
    for (const ref of files) {
      const chip = fileChip(ref);
      list.append(chip);
      fill?.(chip, ref);
    }
    list.hidden = files.length === 0;
    this.root.append(node);
    this.scrollToEnd();
    return node;
  }

  /** @returns {ReplyView} */
  addReply() {
    const node = cloneTemplate("reply-template");
    this.root.append(node);
    this.watch(node);
    this.scrollToEnd();
    return new ReplyView(node, this);
  }

  /** @param {Element} node the turn that now grows */
  watch(node) {
    if (this.observed) this.resizes.unobserve(this.observed);
    this.observed = node;
    this.resizes.observe(node);
  }

  /** Remove every turn (New chat). */
  clear() {
    for (const turn of this.root.querySelectorAll(".turn")) turn.remove();
    this.setEmpty(true);
  }

  /** @param {boolean} empty */
  setEmpty(empty) {
    const hint = document.getElementById("empty-state");
    if (hint) hint.hidden = !empty;
  }

  /** Hide every Retry button: only the latest failure may be retried. */
  hideRetries() {
    for (const button of this.root.querySelectorAll(".retry")) {
      if (button instanceof HTMLElement) button.hidden = true;
    }
  }

  /** Keep the newest text in view on the next frame, if the reader is following. */
  follow() {
    if (this.followFrame !== 0 || !this.pinned) return;
    this.followFrame = requestAnimationFrame(() => {
      this.followFrame = 0;
      if (this.pinned) this.scrollToEnd();
    });
  }

  scrollToEnd() {
    this.root.scrollTop = this.root.scrollHeight;
    this.lastTop = this.root.scrollTop;
    this.pinned = true;
    if (this.jump) this.jump.hidden = true;
  }
}

/**
 * Copy a code block's exact text. The Clipboard API needs a secure context (https or
 * localhost); elsewhere the block is selected and copied the older way.
 * @param {HTMLButtonElement} button
 */
async function copyCode(button) {
  const code = codeOf(button);
  let copied = false;
  try {
    await navigator.clipboard.writeText(code);
    copied = true;
  } catch {
    const pre = button.closest(".code-block")?.querySelector("pre code");
    const selection = getSelection();
    if (pre && selection) {
      const range = document.createRange();
      range.selectNodeContents(pre);
      selection.removeAllRanges();
      selection.addRange(range);
      copied = document.execCommand("copy");
      selection.removeAllRanges();
    }
  }
  button.textContent = copied ? "Copied" : "Copy failed";
  setTimeout(() => { button.textContent = "Copy"; }, COPIED_MS);
}

export class ReplyView {
  /**
   * @param {HTMLElement} node an article.reply
   * @param {TranscriptView} transcript
   */
  constructor(node, transcript) {
    this.node = node;
    this.transcript = transcript;
    this.statusEl = find(node, ".status", HTMLElement);
    this.modelEl = find(node, ".reply-model", HTMLElement);
    this.metricsEl = find(node, ".metrics", HTMLElement);
    this.errorEl = find(node, ".error", HTMLElement);
    this.noticeEl = find(node, ".notice", HTMLElement);
    this.parts = new ReplyParts(
      find(node, ".parts", HTMLElement),
      find(node, ".sources", HTMLElement),
      () => transcript.follow(),
    );
  }

  /** @returns {Status} */
  get status() {
    return /** @type {Status} */ (this.node.dataset.status);
  }

  /**
   * @param {Status} status
   * @param {string} [detail] extra words after the status, e.g. "max_tokens reached"
   */
  setStatus(status, detail) {
    this.node.dataset.status = status;
    this.statusEl.textContent = detail ? `${STATUS_TEXT[status]} · ${detail}` : STATUS_TEXT[status];
    const busy = status === "connecting" || status === "streaming" || status === "reconnecting";
    this.node.setAttribute("aria-busy", String(busy));
  }

  /** @param {string} model @param {string} provider */
  setModel(model, provider) {
    this.modelEl.textContent = provider ? `${model} · ${provider}` : model;
  }

  /** @param {ReplyMetrics} metrics */
  showMetrics(metrics) {
    this.metricsEl.hidden = false;
    const summary = metrics.summary();
    if (this.metricsEl.textContent !== summary) this.metricsEl.textContent = summary;
    const explanation = metrics.explanation();
    if (this.metricsEl.title !== explanation) this.metricsEl.title = explanation;
  }

  /**
   * Show an error inline in this reply.
   * @param {{type: string, message: string}} error
   * @param {(() => void) | null} onRetry
   */
  showError(error, onRetry) {
    this.errorEl.hidden = false;
    find(this.errorEl, ".error-type", HTMLElement).textContent = error.type;
    find(this.errorEl, ".error-message", HTMLElement).textContent = error.message;
    const retry = find(this.errorEl, ".retry", HTMLButtonElement);
    if (onRetry) {
      retry.hidden = false;
      retry.addEventListener("click", onRetry, { once: true });
    }
    this.transcript.follow();
  }

  /**
   * A plain note under the reply (a refusal, a full context window): not an error.
   * @param {string} title
   * @param {string} [text]
   */
  showNotice(title, text) {
    this.noticeEl.hidden = false;
    find(this.noticeEl, ".notice-title", HTMLElement).textContent = title;
    const body = find(this.noticeEl, ".notice-text", HTMLElement);
    body.textContent = text ?? "";
    body.hidden = !text;
    this.transcript.follow();
  }

  /**
   * Mark this turn (and its question) as not part of the conversation sent onwards.
   * @param {HTMLElement} userTurn
   */
  markExcluded(userTurn) {
    this.node.classList.add("excluded");
    userTurn.classList.add("excluded");
    const note = find(this.node, ".turn-note", HTMLElement);
    note.hidden = false;
    note.textContent = "This question and reply are left out of the conversation sent with later messages.";
  }
}
