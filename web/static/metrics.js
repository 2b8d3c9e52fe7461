// @ts-check
// Per-reply figures: time to first token, tokens per second, and the server's usage
// (input, cached input, output). Pure; no DOM.

/** @typedef {import("./record.js").Usage} Usage */

/** Below this first-to-last-chunk span (ms), tokens/s is shown as "—". */
const MIN_RATE_SPAN_MS = 50;

export class ReplyMetrics {
  /**
   * @param {number | null} startedAt performance.now() when Send was pressed; null for a
   *   reply resumed after a reload, whose first token this page did not see arrive
   */
  constructor(startedAt = performance.now()) {
    this.startedAt = startedAt;
    /** @type {number | null} */
    this.firstAt = null;
    /** @type {number | null} */
    this.lastAt = null;
    this.chunks = 0;
    /** @type {number | null} from the `usage` event, once it arrives */
    this.outputTokens = null;
    /** @type {Usage | null} */
    this.usageEvent = null;
    this.reconnects = 0;
  }

  /** One `message` event arrived. */
  chunk(now = performance.now()) {
    if (this.firstAt === null) this.firstAt = now;
    this.lastAt = now;
    this.chunks += 1;
  }

  /** @param {Usage} usage */
  usage(usage) {
    this.usageEvent = usage;
    if (Number.isInteger(usage.output_tokens)) this.outputTokens = usage.output_tokens ?? null;
  }

  /** Tokens: usage.output_tokens when known, else the number of text chunks. */
  get tokens() {
    return this.outputTokens ?? this.chunks;
  }

  get tokensFromUsage() {
    return this.outputTokens !== null;
  }

  /** Milliseconds from Send to the first text chunk, or null before it. */
  get ttftMs() {
    return this.firstAt === null || this.startedAt === null ? null : this.firstAt - this.startedAt;
  }

  /**
   * Tokens per second from the first to the last chunk, or null when that span is too
   * short to mean anything (a reply that arrived in one burst, or a single chunk).
   */
  get tokensPerSecond() {
    if (this.firstAt === null || this.lastAt === null) return null;
    const ms = this.lastAt - this.firstAt;
    return ms >= MIN_RATE_SPAN_MS ? this.tokens / (ms / 1000) : null;
  }

  /**
   * A short line for the UI, e.g.
   * "TTFT 312 ms · 41.8 tok/s · 128 tokens · 2,048 input · 1,536 cached".
   */
  summary() {
    /** @type {string[]} */
    const parts = [];
    if (this.resumed) {
      // This page saw only the end of the reply: its timings would not be the reply's.
      parts.push("resumed", `${this.tokens} ${this.tokens === 1 ? "token" : "tokens"}`);
      parts.push(...usageParts(this.usageEvent));
      return parts.join(" · ");
    }
    const ttft = this.ttftMs;
    parts.push(ttft === null ? "TTFT —" : `TTFT ${formatMs(ttft)}`);
    const rate = this.tokensPerSecond;
    parts.push(rate === null ? "— tok/s" : `${rate.toFixed(1)} tok/s`);
    parts.push(`${this.tokens} ${this.tokens === 1 ? "token" : "tokens"}`);
    parts.push(...usageParts(this.usageEvent));
    if (this.reconnects > 0) {
      parts.push(`${this.reconnects} ${this.reconnects === 1 ? "reconnect" : "reconnects"}`);
    }
    return parts.join(" · ");
  }

  /** Resumed after a reload: the page did not see the reply start. */
  get resumed() {
    return this.startedAt === null;
  }

  /** The tooltip: what each number means, and where the token count comes from. */
  explanation() {
    if (this.resumed) {
      return [
        "Resumed after a reload: this page did not see the reply start, so it shows no time to first token or tokens per second.",
        this.tokensFromUsage
          ? "Tokens: usage.output_tokens reported by the server."
          : "Tokens: counted text chunks (SSE message events) since the reload.",
        "input: every input token of the request, cached ones included (the server's usage).",
        "cached: input tokens read from the prompt cache (cache_read_input_tokens).",
      ].join("\n");
    }
    const source = this.tokensFromUsage
      ? "Tokens: usage.output_tokens reported by the server."
      : "Tokens: counted text chunks (SSE message events); replaced by the server's usage.output_tokens when the reply ends.";
    return [
      "TTFT: time to first token, from pressing Send to the first text chunk.",
      source,
      "tok/s: tokens divided by the time from the first to the last text chunk.",
      "input: every input token of the request, cached ones included.",
      "cached: input tokens read from the prompt cache (cache_read_input_tokens).",
    ].join("\n");
  }
}

const count = new Intl.NumberFormat("en-US");

/**
 * The usage figures worth a glance: input (cached included), cached, thinking, searches.
 * Only the figures the server reported appear.
 * @param {Usage | null} usage
 * @returns {string[]}
 */
export function usageParts(usage) {
  if (!usage) return [];
  const parts = [];
  const read = usage.cache_read_input_tokens;
  const written = usage.cache_creation_input_tokens;
  if (isCount(usage.input_tokens)) {
    const input = usage.input_tokens + (isCount(read) ? read : 0) + (isCount(written) ? written : 0);
    parts.push(`${count.format(input)} input`);
  }
  if (isCount(read)) parts.push(`${count.format(read)} cached`);
  if (isCount(usage.thinking_tokens) && usage.thinking_tokens > 0) {
    parts.push(`${count.format(usage.thinking_tokens)} thinking`);
  }
  const searches = usage.web_search_requests;
  if (isCount(searches) && searches > 0) parts.push(`${searches} ${searches === 1 ? "search" : "searches"}`);
  return parts;
}

/**
 * @param {unknown} value
 * @returns {value is number}
 */
function isCount(value) {
  return Number.isInteger(value) && /** @type {number} */ (value) >= 0;
}

/** @param {number} ms */
function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
