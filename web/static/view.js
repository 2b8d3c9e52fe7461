// The transcript's DOM. Model text only ever enters the page as text nodes
// (Text.appendData / textContent), never as HTML: a reply containing markup shows
// that markup literally and cannot run script.

/** Status of a reply -> the text shown in its status pill. */
const STATUS_TEXT = {
  connecting: "Connecting…",
  streaming: "Streaming…",
  reconnecting: "Reconnecting…",
  done: "Done",
  cancelled: "Stopped",
  error: "Error",
};

/** Distance from the bottom (px) within which the transcript follows new text. */
const FOLLOW_SLACK = 48;

export class TranscriptView {
  /** @param {HTMLElement} root the #transcript element */
  constructor(root) {
    this.root = root;
    this.userTemplate = /** @type {HTMLTemplateElement} */ (document.getElementById("user-turn-template"));
    this.replyTemplate = /** @type {HTMLTemplateElement} */ (document.getElementById("reply-template"));
  }

  /** @returns {HTMLElement} the new user turn */
  addUserTurn(text) {
    this.setEmpty(false);
    const node = /** @type {HTMLElement} */ (this.userTemplate.content.firstElementChild.cloneNode(true));
    node.querySelector(".bubble").textContent = text;
    this.root.append(node);
    this.scrollToEnd();
    return node;
  }

  /** @returns {ReplyView} */
  addReply() {
    const node = /** @type {HTMLElement} */ (this.replyTemplate.content.firstElementChild.cloneNode(true));
    this.root.append(node);
    this.scrollToEnd();
    return new ReplyView(node, this);
  }

  /** Remove every turn (New chat). */
  clear() {
    for (const turn of this.root.querySelectorAll(".turn")) turn.remove();
    this.setEmpty(true);
  }

  setEmpty(empty) {
    const hint = document.getElementById("empty-state");
    if (hint) hint.hidden = !empty;
  }

  /** Hide every Retry button: only the latest failure may be retried. */
  hideRetries() {
    for (const button of this.root.querySelectorAll(".retry")) button.hidden = true;
  }

  isPinned() {
    const r = this.root;
    return r.scrollHeight - r.scrollTop - r.clientHeight <= FOLLOW_SLACK;
  }

  scrollToEnd() {
    this.root.scrollTop = this.root.scrollHeight;
  }
}

export class ReplyView {
  /**
   * @param {HTMLElement} node an article.reply
   * @param {TranscriptView} transcript
   */
  constructor(node, transcript) {
    this.node = node;
    this.transcript = transcript;
    this.statusEl = node.querySelector(".status");
    this.modelEl = node.querySelector(".reply-model");
    this.metricsEl = node.querySelector(".metrics");
    this.errorEl = node.querySelector(".error");
    // One text node that grows: appendData is cheap and can never parse markup.
    this.text = document.createTextNode("");
    node.querySelector(".content").append(this.text);
  }

  get status() {
    return this.node.dataset.status;
  }

  /**
   * @param {keyof STATUS_TEXT} status
   * @param {string} [detail] extra words after the status, e.g. "max_tokens reached"
   */
  setStatus(status, detail) {
    this.node.dataset.status = status;
    this.statusEl.textContent = detail ? `${STATUS_TEXT[status]} · ${detail}` : STATUS_TEXT[status];
    const busy = status === "connecting" || status === "streaming" || status === "reconnecting";
    this.node.setAttribute("aria-busy", String(busy));
  }

  setModel(model, provider) {
    this.modelEl.textContent = provider ? `${model} · ${provider}` : model;
  }

  /** Append one streamed delta, following it down if the reader is at the bottom. */
  append(delta) {
    const follow = this.transcript.isPinned();
    this.text.appendData(delta);
    if (follow) this.transcript.scrollToEnd();
  }

  get content() {
    return this.text.data;
  }

  /** @param {import("./metrics.js").ReplyMetrics} metrics */
  showMetrics(metrics) {
    this.metricsEl.hidden = false;
    this.metricsEl.textContent = metrics.summary();
    this.metricsEl.title = metrics.explanation();
  }

  /**
   * Show an error inline in this reply.
   * @param {{type: string, message: string}} error
   * @param {(() => void) | null} onRetry
   */
  showError(error, onRetry) {
    this.errorEl.hidden = false;
    this.errorEl.querySelector(".error-type").textContent = error.type;
    this.errorEl.querySelector(".error-message").textContent = error.message;
    const retry = this.errorEl.querySelector(".retry");
    if (onRetry) {
      retry.hidden = false;
      retry.addEventListener("click", onRetry, { once: true });
    }
    this.transcript.scrollToEnd();
  }

  /** Mark this turn (and its question) as not part of the conversation sent onwards. */
  markExcluded(userTurn) {
    this.node.classList.add("excluded");
    userTurn.classList.add("excluded");
    const note = this.node.querySelector(".turn-note");
    note.hidden = false;
    note.textContent = "This question and reply are left out of the conversation sent with later messages.";
  }
}
