// Wires the chat page: the composer, Send/Stop, one reply at a time.
// Flow per question: POST /api/streams (api.js) -> EventSource on the answered url
// (stream.js) -> text appended live (view.js) -> the turn settles into the history
// (history.js) with its metrics (metrics.js).

import { ApiError, cancelStream, createStream } from "./api.js";
import { Conversation } from "./history.js";
import { ReplyMetrics } from "./metrics.js";
import { openStream } from "./stream.js";
import { TranscriptView } from "./view.js";

/** Server-rendered configuration (data-* on <body>; no inline script under the CSP). */
function readConfig(dataset) {
  return {
    // The server's default and upper bound for max_tokens.
    maxTokens: Number.parseInt(dataset.maxTokens ?? "", 10) || null,
  };
}

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const config = readConfig(document.body.dataset);
const form = /** @type {HTMLFormElement} */ ($("#composer"));
const prompt = /** @type {HTMLTextAreaElement} */ ($("#prompt"));
const sendButton = /** @type {HTMLButtonElement} */ ($("#send"));
const stopButton = /** @type {HTMLButtonElement} */ ($("#stop"));
const modelPicker = /** @type {HTMLSelectElement | null} */ (document.querySelector("#model"));
const systemInput = /** @type {HTMLTextAreaElement} */ ($("#system"));
const maxTokensInput = /** @type {HTMLInputElement} */ ($("#max-tokens"));
const providerEl = $("#provider");
const liveStatus = $("#live-status");

const transcript = new TranscriptView($("#transcript"));
const conversation = new Conversation();

/**
 * The reply being streamed, or null.
 * @type {null | {question: string, userTurn: HTMLElement, reply: import("./view.js").ReplyView,
 *   metrics: ReplyMetrics, id: string | null, stream: {close(): void} | null,
 *   stopReason: string | null, finished: boolean}}
 */
let active = null;

function announce(text) {
  liveStatus.textContent = text;
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
  form.setAttribute("aria-busy", String(busy));
}

/** The request body for `question`, or null when an option is invalid. */
function buildRequest(question) {
  const body = { messages: conversation.messagesWith(question) };
  if (modelPicker) body.model = modelPicker.value;
  const system = systemInput.value.trim();
  if (system) body.system = system;
  if (maxTokensInput.value !== "" && maxTokensInput.value !== String(config.maxTokens)) {
    if (!maxTokensInput.checkValidity()) {
      maxTokensInput.closest("details").open = true;
      maxTokensInput.reportValidity();
      return null;
    }
    body.max_tokens = Number(maxTokensInput.value);
  }
  return body;
}

/** Ask `question`: show it, start a generation, stream its reply. */
async function ask(question) {
  if (active || question.trim() === "") return;
  const body = buildRequest(question);
  if (!body) return;

  const focusOnRetry = document.activeElement?.classList.contains("retry");
  transcript.hideRetries();
  if (focusOnRetry) prompt.focus(); // the button just vanished under the focus
  const userTurn = transcript.addUserTurn(question);
  const reply = transcript.addReply();
  const turn = {
    question, userTurn, reply, metrics: new ReplyMetrics(),
    id: null, stream: null, stopReason: null, finished: false,
  };
  active = turn;
  setBusy(true);
  announce("Claude is replying…");

  let created;
  try {
    created = await createStream(body);
  } catch (error) {
    const shown = error instanceof ApiError
      ? { type: error.type, message: error.message }
      : { type: "client_error", message: String(error) };
    finish(turn, "error", shown);
    return;
  }
  if (turn.finished) {
    // Stop was pressed while the POST was in flight: cancel what it started.
    void cancelStream(created.id);
    return;
  }
  turn.id = created.id;
  turn.stream = openStream(created.url, {
    onMeta(meta) {
      reply.setModel(meta.model, meta.provider);
      if (meta.provider) providerEl.textContent = meta.provider;
      if (reply.status === "connecting") reply.setStatus("streaming");
    },
    onDelta(text) {
      if (reply.status !== "streaming") reply.setStatus("streaming");
      turn.metrics.chunk();
      reply.append(text);
      reply.showMetrics(turn.metrics);
    },
    onUsage(usage) {
      turn.metrics.usage(usage);
      turn.stopReason = typeof usage?.stop_reason === "string" ? usage.stop_reason : null;
    },
    onDone() {
      finish(turn, turn.stopReason === "cancelled" ? "cancelled" : "done");
    },
    onServerError(error) {
      finish(turn, "error", error);
    },
    onReconnecting() {
      turn.metrics.reconnects += 1;
      reply.setStatus("reconnecting");
      announce("Connection lost. Reconnecting…");
    },
    onResumed() {
      reply.setStatus("streaming");
      announce("Reconnected. Claude is replying…");
    },
    onLost() {
      finish(turn, "error", {
        type: "connection_lost",
        message: "The connection to the server was lost and the reply could not be resumed.",
      });
    },
  });
}

/**
 * End a turn once: close its stream, settle it into the history, show the outcome.
 * @param {"done" | "cancelled" | "error"} outcome
 * @param {{type: string, message: string}} [error]
 */
function finish(turn, outcome, error) {
  if (turn.finished) return;
  turn.finished = true;
  turn.stream?.close();
  const { reply, metrics } = turn;

  const kept = conversation.settle(turn.question, reply.content, outcome);
  if (!kept) reply.markExcluded(turn.userTurn);

  if (outcome === "error") {
    reply.setStatus("error");
    reply.showError(error, () => ask(turn.question));
    announce(`Error: ${error.message}`);
  } else if (outcome === "cancelled") {
    reply.setStatus("cancelled");
    announce("Reply stopped.");
  } else {
    const detail = turn.stopReason === "max_tokens" ? "max_tokens reached" : undefined;
    reply.setStatus("done", detail);
    announce("Reply finished.");
  }
  if (metrics.chunks > 0 || metrics.tokensFromUsage) reply.showMetrics(metrics);

  if (active === turn) active = null;
  const focusWasOnStop = document.activeElement === stopButton;
  setBusy(false);
  // Stop just became disabled: do not leave keyboard focus stranded on it.
  if (focusWasOnStop || document.activeElement === document.body) prompt.focus();
}

/** The Stop button: cancel upstream (DELETE) and close the EventSource now. */
function stop() {
  const turn = active;
  if (!turn) return;
  if (turn.id) void cancelStream(turn.id);
  finish(turn, "cancelled");
}

function submitPrompt() {
  if (active) return; // one reply at a time; the draft stays in the box
  const question = prompt.value;
  if (question.trim() === "") return;
  prompt.value = "";
  autosize();
  prompt.focus();
  void ask(question);
}

function autosize() {
  // Grow with the text up to the CSS max-height (CSSOM writes are allowed by the CSP).
  prompt.style.height = "auto";
  prompt.style.height = `${prompt.scrollHeight + 2}px`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submitPrompt();
});

prompt.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; never send mid-IME-composition.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submitPrompt();
  } else if (event.key === "Escape" && active) {
    stop();
  }
});
prompt.addEventListener("input", autosize);

stopButton.addEventListener("click", stop);

$("#new-chat").addEventListener("click", () => {
  stop();
  conversation.clear();
  transcript.clear();
  announce("New conversation.");
  prompt.focus();
});

window.addEventListener("pagehide", () => {
  // Leaving mid-reply: stop the generation instead of letting it run to the end.
  stop();
});

setBusy(false);
prompt.focus();
