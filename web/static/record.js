// @ts-check
// A reply as the list of events that made it, in arrival order, with consecutive text
// deltas joined. The same list renders a reply live, restores it after a reload
// (storage.js keeps it), and gives the exact text sent back as the assistant's message.
// The shapes are the wire contract of docs/protocol.md, "Events".

/** @typedef {{stream?: string, model: string, provider: string}} Meta */
/** @typedef {{reason: "redacted" | "omitted" | string}} HiddenThinking */
/** @typedef {{id: string, name: string, input: Record<string, unknown>}} ToolCall */
/** @typedef {{title: string | null, url: string, page_age: string | null}} SearchResult */
/**
 * @typedef {object} ToolResult
 * @property {string} tool_use_id
 * @property {string} name
 * @property {SearchResult[]} [results]
 * @property {{code: string}} [error]
 */
/** @typedef {{url: string | null, title: string | null, cited_text: string}} Citation */
/** @typedef {{type: string, category: string | null, explanation: string | null}} StopDetails */
/**
 * The `usage` event. Every key is optional here: a server without cache or thinking
 * figures sends fewer of them, and the page shows what it gets.
 * @typedef {object} Usage
 * @property {number} [input_tokens]
 * @property {number} [output_tokens]
 * @property {string | null} [stop_reason]
 * @property {number} [cache_creation_input_tokens]
 * @property {number} [cache_read_input_tokens]
 * @property {number} [thinking_tokens]
 * @property {number} [web_search_requests]
 * @property {StopDetails | null} [stop_details]
 */
/**
 * One event of a reply. A thinking entry carries the milliseconds its section had been
 * open, so a restored section shows the time it took.
 * @typedef {["meta", Meta] | ["thinking", string, number] | ["thinking_hidden", HiddenThinking]
 *   | ["tool", ToolCall] | ["tool_result", ToolResult] | ["message", string]
 *   | ["citation", Citation] | ["usage", Usage]} Entry
 */

export class ReplyRecord {
  /** @param {Entry[]} [entries] */
  constructor(entries = []) {
    /** @type {Entry[]} */
    this.entries = [];
    this.text = "";
    for (const entry of entries) this.add(entry);
  }

  /**
   * Keep one event. Text and thinking deltas join the entry before them when it is of
   * the same kind, so a long reply is a few long strings, not one entry per token.
   * @param {Entry} entry
   */
  add(entry) {
    const last = this.entries.at(-1);
    if (entry[0] === "message") {
      this.text += entry[1];
      if (last?.[0] === "message") {
        last[1] += entry[1];
        return;
      }
      this.entries.push(["message", entry[1]]);
    } else if (entry[0] === "thinking" && last?.[0] === "thinking") {
      last[1] += entry[1];
      last[2] = entry[2];
    } else {
      this.entries.push(entry[0] === "thinking" ? ["thinking", entry[1], entry[2]] : entry);
    }
  }

  /** The `usage` event, once it has come. */
  get usage() {
    for (const entry of this.entries) if (entry[0] === "usage") return entry[1];
    return null;
  }
}
