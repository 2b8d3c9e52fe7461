// @ts-check
// One question and its reply: the view, the record of the reply's events (record.js),
// its metrics, and where its stream stands. Events reach the view through apply(), live
// or replayed from storage, so a restored reply is built by the same code as a live one.

import { exchangeOf } from "./exchange.js";
import { ReplyMetrics } from "./metrics.js";
import { ReplyRecord } from "./record.js";
import { answerTools, awaitingContinuation, unansweredTurn } from "./tools.js";

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./record.js").Entry} Entry */
/** @typedef {import("./storage.js").ActiveTurn} ActiveTurn */
/** @typedef {import("./storage.js").Outcome} Outcome */
/** @typedef {import("./storage.js").SavedTurn} SavedTurn */
/** @typedef {import("./view.js").ReplyView} ReplyView */

export class Turn {
  /**
   * @param {string} question
   * @param {FileRef[]} files sent with the question
   * @param {HTMLElement} userTurn
   * @param {ReplyView} reply
   * @param {ReplyMetrics} [metrics]
   */
  constructor(question, files, userTurn, reply, metrics = new ReplyMetrics()) {
    this.question = question;
    this.files = files;
    this.userTurn = userTurn;
    this.reply = reply;
    this.metrics = metrics;
    this.record = new ReplyRecord();
    /** @type {string | null} */
    this.id = null;
    /** @type {string | null} */
    this.url = null;
    /** @type {string | null} the id of the last event applied */
    this.lastEventId = null;
    /** @type {{close(): void} | null} */
    this.stream = null;
    this.finished = false;
    this.metricsFrame = 0;
  }

  /**
   * Show one event and keep it in the record.
   * @param {Entry} entry
   * @param {boolean} live false when replayed from storage
   */
  apply(entry, live) {
    const { reply } = this;
    const parts = reply.parts;
    switch (entry[0]) {
      case "meta":
        reply.setModel(entry[1].model, entry[1].provider);
        break;
      case "thinking":
        parts.thinking(entry[1], entry[2]);
        if (live) entry[2] = parts.thinkingMs();
        break;
      case "thinking_hidden":
        parts.thinkingHidden(entry[1].reason);
        break;
      case "tool_start":
        parts.toolStart(entry[1]);
        break;
      case "tool_input":
        parts.toolInput(entry[1]);
        break;
      case "tool":
        parts.tool(entry[1]);
        break;
      case "tool_answers":
        parts.toolAnswers(entry[1]);
        break;
      case "tool_result":
        parts.toolResult(entry[1]);
        break;
      case "message":
        parts.text(entry[1]);
        if (live) this.metrics.chunk();
        break;
      case "citation":
        parts.citation(entry[1]);
        break;
      case "compaction":
        parts.compaction(entry[1]);
        break;
      case "block":
        parts.unsupported(entry[1]);
        break;
      case "file":
        parts.file(entry[1].file_id);
        break;
    }
    this.record.add(entry);
    if (entry[0] === "usage") this.metrics.usage(this.record.totalUsage);
    if (entry[0] !== "meta" && entry[0] !== "usage" && reply.status === "connecting") {
      reply.setStatus("streaming");
    }
    if (live && entry[0] === "message") this.showMetricsSoon();
  }

  /** Refresh the metrics line on the next frame: once a frame, not once a token. */
  showMetricsSoon() {
    if (this.metricsFrame !== 0) return;
    this.metricsFrame = requestAnimationFrame(() => {
      this.metricsFrame = 0;
      this.reply.showMetrics(this.metrics);
    });
  }

  /** The `usage` event's stop_reason, once it has come. */
  get stopReason() {
    const reason = this.record.usage?.stop_reason;
    return typeof reason === "string" ? reason : null;
  }

  /** The exact text of the reply so far. */
  get text() {
    return this.record.text;
  }

  /**
   * What the reply adds to the conversation: its tool turns as messages, then its final
   * text exactly (what is sent back as the assistant's last message), with the blocks that
   * lead it and its container (exchange.js).
   */
  get exchange() {
    return exchangeOf(this.record.entries);
  }

  /**
   * When the reply stopped for tools the client runs, answer them (tools.js) and show the
   * answers; false when there is nothing to answer.
   */
  answerTools() {
    const turn = this.stopReason === "tool_use" ? unansweredTurn(this.record.entries) : null;
    if (!turn) return false;
    this.apply(["tool_answers", answerTools(turn)], true);
    return true;
  }

  /** The tools are answered and the continuation not yet started (see app.js, resume). */
  get awaitingContinuation() {
    return awaitingContinuation(this.record.entries);
  }

  /** @returns {ActiveTurn} */
  toActive() {
    return {
      question: this.question,
      files: this.files,
      streamId: this.id,
      url: this.url,
      lastEventId: this.lastEventId,
      entries: this.record.entries,
    };
  }

  /**
   * @param {Outcome} outcome
   * @param {boolean} kept
   * @param {{type: string, message: string}} [error]
   * @returns {SavedTurn}
   */
  toSaved(outcome, kept, error) {
    /** @type {SavedTurn} */
    const saved = { question: this.question, files: this.files, entries: this.record.entries, outcome, kept };
    if (error) saved.error = error;
    if (!this.reply.metricsEl.hidden) {
      saved.metrics = { text: this.reply.metricsEl.textContent ?? "", title: this.reply.metricsEl.title };
    }
    return saved;
  }
}
