// @ts-check
// A reply as the list of events that made it, in arrival order, with consecutive text
// deltas joined. The same list renders a reply live, restores it after a reload
// (storage.js keeps it), and gives the exact text sent back as the assistant's message.
// The shapes are the wire contract of docs/protocol.md, "Events".

/** @typedef {{stream?: string, model: string, provider: string}} Meta */
/** @typedef {{reason: "redacted" | "omitted" | string}} HiddenThinking */
/**
 * A tool call; an MCP server's names its server.
 * @typedef {{id: string, name: string, input: Record<string, unknown>, server_name?: string}} ToolCall
 */
/** @typedef {{title: string | null, url: string, page_age: string | null}} SearchResult */
/** @typedef {{id: string, name: string}} ToolStart */
/** @typedef {{id: string, delta: string}} ToolInput */
/**
 * A content block of a message, as the API and the `turn` event give it.
 * @typedef {{type: string} & Record<string, unknown>} Block
 */
/**
 * A tool's result (docs/protocol.md, "Events" and "Server tools"): web search's `results`;
 * a fetched page's `url` and `title`; a code run's streams, return code and files (a
 * bash run's `command`, a text editor's `command`, `path` and `result`); a tool search's
 * `tools`; a server-run or MCP tool's `content`; or, for any server tool, an `error`.
 * @typedef {object} ToolResult
 * @property {string} tool_use_id
 * @property {string} name
 * @property {SearchResult[]} [results]
 * @property {{code: string, message?: string}} [error] the API's error code, and its
 *   message when it gives one
 * @property {string | Block[]} [content]
 * @property {boolean} [is_error]
 * @property {boolean} [truncated]
 * @property {string} [server_name]
 * @property {string} [url]
 * @property {string | null} [title]
 * @property {string | null} [stdout] null when the API encrypted the run's output
 * @property {string} [stderr]
 * @property {number} [return_code]
 * @property {{file_id: string, name: string | null}[]} [files]
 * @property {string} [command]
 * @property {string} [path]
 * @property {Record<string, unknown>} [result]
 * @property {string[]} [tools]
 */
/**
 * The `turn` event: the assistant message to send back, the server's results of its calls,
 * and the calls that wait for approval (docs/protocol.md, "Tools").
 * @typedef {object} ToolTurn
 * @property {"assistant"} role
 * @property {Block[]} content
 * @property {Block[]} [tool_results]
 * @property {string[]} [needs_approval]
 */
/**
 * A `citation` event: a web page's (`url`), or a document's, which says where it points
 * with the API's names (docs/protocol.md, "Attachments"); page ranges end exclusive.
 * @typedef {object} Citation
 * @property {string | null} url
 * @property {string | null} title
 * @property {string} cited_text
 * @property {string} [type] "page_location", "char_location", "content_block_location"
 * @property {number} [document_index]
 * @property {number} [start_page_number]
 * @property {number} [end_page_number]
 */
/**
 * A `compaction` event: the summary of earlier turns (null when it failed) and the block
 * the API wants back, exactly.
 * @typedef {{content: string | null, block: Block}} Compaction
 */
/** @typedef {{id: string, expires_at?: string}} Container a `container` event */
/**
 * A `block` event: content of a type the server does not know.
 * @typedef {{kind: string, type: string, data?: unknown}} UnknownBlock
 */
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
 * @property {number} [web_fetch_requests]
 * @property {StopDetails | null} [stop_details]
 */
/**
 * One event of a reply. A thinking entry carries the milliseconds its section had been
 * open, so a restored section shows the time it took. `tool_answers` is the page's own:
 * the blocks it answered a `turn`'s calls with (tools.js), kept so that the conversation
 * and a reload see exactly what was sent.
 * @typedef {["meta", Meta] | ["thinking", string, number] | ["thinking_hidden", HiddenThinking]
 *   | ["tool_start", ToolStart] | ["tool_input", ToolInput]
 *   | ["tool", ToolCall] | ["tool_result", ToolResult] | ["message", string]
 *   | ["citation", Citation] | ["turn", ToolTurn] | ["tool_answers", Block[]]
 *   | ["compaction", Compaction] | ["container", Container] | ["block", UnknownBlock]
 *   | ["file", {file_id: string}]
 *   | ["usage", Usage]} Entry
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
    } else if (entry[0] === "tool_input" && last?.[0] === "tool_input" && last[1].id === entry[1].id) {
      last[1] = { id: entry[1].id, delta: last[1].delta + entry[1].delta };
    } else {
      this.entries.push(entry[0] === "thinking" ? ["thinking", entry[1], entry[2]] : entry);
    }
  }

  /**
   * The last `usage` event, once one has come: a reply continued after the page answered
   * its tools has one per stream, and the last says how the reply ended.
   */
  get usage() {
    for (let i = this.entries.length - 1; i >= 0; i -= 1) {
      const entry = this.entries[i];
      if (entry[0] === "usage") return entry[1];
    }
    return null;
  }

  /** Every `usage` event's counts summed (the reply's cost), with the last one's ending. */
  get totalUsage() {
    /** @type {Record<string, unknown>} */
    const total = {};
    for (const entry of this.entries) {
      if (entry[0] !== "usage") continue;
      for (const [key, value] of Object.entries(entry[1])) {
        const sum = total[key];
        total[key] = typeof value === "number" && typeof sum === "number" ? sum + value : value;
      }
    }
    return /** @type {Usage} */ (total);
  }
}
