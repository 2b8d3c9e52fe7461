// @ts-check
// The conversation as the API sees it: alternating user/assistant messages, starting
// with the user (docs/protocol.md, "Requests"). Only settled turns live here; the turn
// being streamed is added when its reply ends, and only if it can be kept. A turn whose
// reply used the client's tools holds, between its question and its final text, each tool
// turn's assistant message (a content array) and the user's tool_result message
// (docs/protocol.md, "Tools"). A question's attached files are kept as references
// (attachments.js), turned into content blocks for each request. A reply whose context
// was compacted sends its compaction block back before its text; the container a reply's
// code last ran in is the next request's (docs/protocol.md, "Server tools").

import { finalMessage, keepable } from "./exchange.js";

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./storage.js").Outcome} Outcome */
/** @typedef {import("./exchange.js").Message} Message */
/** @typedef {import("./exchange.js").Exchange} Exchange */
/** @typedef {import("./record.js").Container} Container */

export class Conversation {
  /** @type {{user: string, files: FileRef[], reply: Exchange}[]} */
  #turns = [];

  /**
   * The messages for the next POST: the whole history, then the new question.
   * @param {string} question
   * @param {FileRef[]} files the new question's
   * @param {(question: string, files: FileRef[]) => Promise<Message["content"]>} contentOf
   *   a question's content, its files included
   * @returns {Promise<Message[]>}
   */
  async messagesWith(question, files, contentOf) {
    /** @type {Message[]} */
    const messages = [];
    for (const turn of this.#turns) {
      messages.push({ role: "user", content: await contentOf(turn.user, turn.files) });
      messages.push(...turn.reply.steps, finalMessage(turn.reply.blocks, turn.reply.text));
    }
    messages.push({ role: "user", content: await contentOf(question, files) });
    return messages;
  }

  /** The container the conversation's code last ran in, if any. */
  get container() {
    /** @type {Container | null} */
    let last = null;
    for (const turn of this.#turns) last = turn.reply.container ?? last;
    return last;
  }

  /** Every file the conversation sends with its next question. */
  get files() {
    return this.#turns.flatMap((turn) => turn.files);
  }

  /**
   * Settle a finished turn. The policy for partial replies:
   * - "done": kept (when it has text).
   * - "cancelled": the partial text is kept. The user chose to stop and has read
   *   that text; the next question ("go on", "shorter") usually refers to it.
   * - "error" and "interrupted": dropped with its question. The text was cut off by a
   *   failure the user did not choose, so the model should not build on it; the page
   *   offers Retry instead.
   * - "refused": dropped with its question. Claude declined; carrying the declined
   *   exchange along would steer every later reply.
   * A turn without usable final text (after its last tool turn) is always dropped with
   * its question, so the history keeps alternating, never holds an empty assistant
   * message, and never ends a turn on unanswered tool calls; unless the reply stopped
   * at a compaction, whose block alone is then the assistant's message (the API wants
   * it back).
   * @param {string} question
   * @param {FileRef[]} files
   * @param {Exchange} reply
   * @param {Outcome} outcome
   * @returns {boolean} whether the turn is now part of the conversation
   */
  settle(question, files, reply, outcome) {
    if (outcome !== "done" && outcome !== "cancelled") return false;
    if (!keepable(reply.text) && reply.blocks.length === 0) return false;
    this.restore(question, files, reply);
    return true;
  }

  /**
   * A turn that was kept before the page was reloaded.
   * @param {string} question
   * @param {FileRef[]} files
   * @param {Exchange} reply
   */
  restore(question, files, reply) {
    this.#turns.push({ user: question, files, reply });
  }

  clear() {
    this.#turns = [];
  }

  get length() {
    return this.#turns.length;
  }
}
