// Per-reply timing: time to first token and tokens per second. Pure; no DOM.

/** Below this first-to-last-chunk span (ms), tokens/s is shown as "—". */
const MIN_RATE_SPAN_MS = 50;

export class ReplyMetrics {
  /** @param {number} startedAt performance.now() when Send was pressed */
  constructor(startedAt = performance.now()) {
    this.startedAt = startedAt;
    this.firstAt = null;
    this.lastAt = null;
    this.chunks = 0;
    this.outputTokens = null; // from the `usage` event, once it arrives
    this.reconnects = 0;
  }

  /** One `message` event arrived. */
  chunk(now = performance.now()) {
    if (this.firstAt === null) this.firstAt = now;
    this.lastAt = now;
    this.chunks += 1;
  }

  /** @param {{output_tokens?: unknown}} usage */
  usage(usage) {
    if (Number.isInteger(usage?.output_tokens)) this.outputTokens = usage.output_tokens;
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
    return this.firstAt === null ? null : this.firstAt - this.startedAt;
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

  /** A short line for the UI, e.g. "TTFT 312 ms · 41.8 tok/s · 128 tokens". */
  summary() {
    const parts = [];
    const ttft = this.ttftMs;
    parts.push(ttft === null ? "TTFT —" : `TTFT ${formatMs(ttft)}`);
    const rate = this.tokensPerSecond;
    parts.push(rate === null ? "— tok/s" : `${rate.toFixed(1)} tok/s`);
    parts.push(`${this.tokens} ${this.tokens === 1 ? "token" : "tokens"}`);
    if (this.reconnects > 0) {
      parts.push(`${this.reconnects} ${this.reconnects === 1 ? "reconnect" : "reconnects"}`);
    }
    return parts.join(" · ");
  }

  /** The tooltip: what each number means, and where the token count comes from. */
  explanation() {
    const source = this.tokensFromUsage
      ? "Tokens: usage.output_tokens reported by the server."
      : "Tokens: counted text chunks (SSE message events); replaced by the server's usage.output_tokens when the reply ends.";
    return [
      "TTFT: time to first token, from pressing Send to the first text chunk.",
      source,
      "tok/s: tokens divided by the time from the first to the last text chunk.",
    ].join("\n");
  }
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
