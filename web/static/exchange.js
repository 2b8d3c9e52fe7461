// @ts-check
// What a reply adds to the conversation, read from its events (record.js): each tool turn's
// messages, the final text, the blocks the API asks to have back before that text (a
// compaction), and the code execution container the reply last used. The messages are
// exactly what later requests must carry (docs/protocol.md, "Tools" and "Server tools").

import { isSearchResult } from "./tools.js";

/** @typedef {import("./record.js").Block} Block */
/** @typedef {import("./record.js").Container} Container */
/** @typedef {import("./record.js").Entry} Entry */
/** @typedef {import("./record.js").ToolTurn} ToolTurn */
/** @typedef {{role: "user" | "assistant", content: string | Block[]}} Message */
/**
 * What a reply adds after its question: its tool turns as messages, then its final text,
 * led by `blocks` (a compaction block, sent back as the first block of that message); and
 * the container its code ran in, for the next request.
 * @typedef {{steps: Message[], text: string, blocks: Block[], container: Container | null}} Exchange
 */

/**
 * The assistant message a reply's final text is sent back as: the text alone, or a
 * content array when blocks lead it (without a text block when the reply wrote none: a
 * reply that stopped at its compaction).
 * @param {Block[]} blocks
 * @param {string} text
 * @returns {Message}
 */
export function finalMessage(blocks, text) {
  if (blocks.length === 0) return { role: "assistant", content: text };
  return { role: "assistant", content: keepable(text) ? [...blocks, { type: "text", text }] : blocks };
}

/**
 * Whether a reply's text may be sent back as text: the API refuses empty (and
 * whitespace-only) text.
 * @param {string} text
 */
export function keepable(text) {
  return text.trim() !== "";
}

/**
 * Whether a container can still be used: its `expires_at` (an ISO time) has not passed.
 * @param {Container} container
 * @param {number} now ms since the epoch
 */
export function isLive(container, now) {
  const expires = Date.parse(container.expires_at ?? "");
  return Number.isNaN(expires) || expires > now;
}

/**
 * What a reply adds to the conversation after its question: for each tool turn, the
 * assistant message exactly as the `turn` event gave it and the user message of
 * `tool_result`s (the server's first, then this page's); then the text written after the
 * last one, which is the reply's final assistant message. A denial this page sent in place
 * of a result is replaced by the result the server streamed for it, as later requests
 * must carry (docs/protocol.md, "Tools"). A turn not yet answered adds nothing, and leaves
 * no final text. A `compaction` event's block leads the final assistant message when it
 * came in the stream of the final text, as the API wants it back (a `turn` holds its own).
 * @param {Entry[]} entries
 * @returns {Exchange}
 */
export function exchangeOf(entries) {
  /** @type {Message[]} */
  const steps = [];
  /** @type {Map<string, Block>} the results the server streamed, by call */
  const streamed = new Map();
  /** @type {ToolTurn | null} */
  let pending = null;
  /** @type {Block[]} the compaction blocks of the stream being read */
  let lead = [];
  /** @type {Container | null} */
  let container = null;
  let text = "";
  for (const entry of entries) {
    if (entry[0] === "message") {
      text += entry[1];
    } else if (entry[0] === "compaction") {
      lead.push(entry[1].block);
    } else if (entry[0] === "container") {
      container = entry[1];
    } else if (entry[0] === "turn") {
      pending = entry[1];
      lead = []; // a turn's content holds its compaction block, as the API returned it
      text = ""; // the text before a turn is in its content
    } else if (entry[0] === "tool_answers" && pending) {
      const { role, content } = pending;
      steps.push({ role, content }, { role: "user", content: [...(pending.tool_results ?? []), ...entry[1]] });
      pending = null;
    } else if (entry[0] === "tool_result" && entry[1].content !== undefined && !isSearchResult(entry[1])) {
      const { tool_use_id, content, is_error } = entry[1];
      streamed.set(tool_use_id, { type: "tool_result", tool_use_id, content, ...(is_error ? { is_error } : {}) });
    }
  }
  for (const step of steps) {
    if (step.role !== "user" || typeof step.content === "string") continue;
    step.content = step.content.map((block) =>
      block.type === "tool_approval" ? streamed.get(String(block.tool_use_id)) ?? block : block);
  }
  return { steps, text: pending ? "" : text, blocks: pending ? [] : lead, container };
}
