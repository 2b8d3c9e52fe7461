// @ts-check
// Wires the chat page: the composer, Send/Stop, one reply at a time, and the
// conversation's survival across a reload.
// Flow per question: POST /api/streams (api.js) -> EventSource on the answered url
// (stream.js) -> each event applied to the turn (turn.js: the view and its record) ->
// the turn settles into the history (history.js) and the tab's storage (storage.js).
// A reply that stops for tools the client runs is answered (tools.js) and continued by
// another POST into the same turn: the user sees one exchange.
// After a reload, the saved turns are replayed, and a reply that was streaming resumes
// from its last event id: the same generation, from where this page left it.
// Attached files (tray.js) travel as references; each request rebuilds their content
// blocks from the bytes filestore.js keeps (attachments.js).

import { ApiError, cancelStream, createStream, fetchCapabilities } from "./api.js";
import { contentOf, formatSize, limitsOf, showFile } from "./attachments.js";
import { isLive } from "./exchange.js";
import { FileStore } from "./filestore.js";
import { Conversation } from "./history.js";
import { ReplyMetrics } from "./metrics.js";
import { OptionsPanel } from "./options.js";
import { ChatStore, load, loadDraft, saveDraft } from "./storage.js";
import { initialSignIn, SignIn } from "./signin.js";
import { openStream, resumeUrl } from "./stream.js";
import { AttachmentTray } from "./tray.js";
import { Turn } from "./turn.js";
import { find, TranscriptView } from "./view.js";

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./record.js").Container} Container */
/** @typedef {import("./api.js").StreamRequest} StreamRequest */
/** @typedef {import("./storage.js").ActiveTurn} ActiveTurn */
/** @typedef {import("./storage.js").Outcome} Outcome */
/** @typedef {import("./storage.js").SavedTurn} SavedTurn */
/** @typedef {{type: string, message: string}} ShownError */

/** A reply in flight is saved at most this often (ms), and at once when the page hides. */
const SAVE_EVERY_MS = 1000;
/**
 * A page that is leaving sees its EventSource fail (between beforeunload and pagehide);
 * that is not the reply being lost. If the page is still here this long after, the
 * navigation did not happen (a download link, say), and the stream is followed again.
 */
const STAYED_MS = 1000;
/** How /healthz is asked again while a model's capabilities are unknown (followModels). */
const MODELS_FIRST_WAIT_MS = 1000;
const MODELS_LAST_WAIT_MS = 16_000;
const MODELS_FOLLOW_MS = 120_000;

const INTERRUPTED = {
  type: "interrupted",
  message: "The reply was cut off, and the server no longer holds it. Retry asks again.",
};
const BAD_OPTIONS = {
  type: "invalid_option",
  message: "The reply needs the page's tool answers sent, but an option is not valid. Fix it, then Retry.",
};
const NOT_SENT = {
  type: "interrupted",
  message: "The page was reloaded before the server answered, so this reply cannot be found. Retry asks again.",
};

const body = document.body;
const form = find(body, "#composer", HTMLFormElement);
const prompt = find(body, "#prompt", HTMLTextAreaElement);
const sendButton = find(body, "#send", HTMLButtonElement);
const stopButton = find(body, "#stop", HTMLButtonElement);
const providerEl = find(body, "#provider", HTMLElement);
const liveStatus = find(body, "#live-status", HTMLElement);

/** The server's default and upper bound for max_tokens (data-* on <body>: no inline script). */
const maxTokens = Number.parseInt(body.dataset.maxTokens ?? "", 10) || null;
const options = new OptionsPanel(body, maxTokens);

const transcript = new TranscriptView(
  find(body, "#transcript", HTMLElement),
  find(body, "#jump-latest", HTMLButtonElement),
);
const conversation = new Conversation();
const files = new FileStore();
/** @type {Set<string>} the hashes of every file this conversation's questions hold */
const conversationFiles = new Set();
/** @type {Turn | null} the reply being streamed */
let active = null;
const tray = new AttachmentTray({
  button: find(body, "#attach", HTMLButtonElement),
  input: find(body, "#attach-input", HTMLInputElement),
  list: find(body, "#attachments", HTMLElement),
  message: find(body, "#attach-message", HTMLElement),
  composer: form,
}, files, () => [...conversation.files, ...(active?.files ?? [])], (hash) => conversationFiles.has(hash));
const store = new ChatStore(() => active?.toActive() ?? null);
/** Set by beforeunload: the page is probably going away. */
let leaving = false;
const signIn = new SignIn(find(body, "#sign-in", HTMLFormElement), () => {
  announce("Signed in.");
  prompt.focus();
});

/** @param {string} text */
function announce(text) {
  liveStatus.textContent = text;
}

/** @param {boolean} busy */
function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
  form.setAttribute("aria-busy", String(busy));
}

/**
 * The request's options (options.js), with the container the conversation's code last ran
 * in when code execution is on and the container has not expired; null when an option is
 * invalid.
 * @param {Container | null} container
 */
function requestOptions(container) {
  const chosen = options.read();
  if (chosen?.code_execution === "on" && container && isLive(container, Date.now())) {
    chosen.container = container.id;
  }
  return chosen;
}

/**
 * The messages for a question with its files: the conversation, then the question. A file
 * whose bytes this browser no longer has goes as a note in its place, and the user is told.
 * @param {string} question
 * @param {FileRef[]} attached
 */
async function messagesFor(question, attached) {
  /** @type {FileRef[]} */
  const missing = [];
  const messages = await conversation.messagesWith(
    question, attached, (text, refs) => contentOf(text, refs, files, missing));
  if (missing.length > 0) {
    const names = missing.map((ref) => `${ref.name} (${formatSize(ref.size)})`).join(", ");
    const them = missing.length === 1 ? "it" : "them";
    const told = `This browser no longer has ${names}: a note was sent in place of ${them}. `
      + `Attach ${them} again if Claude needs ${them}.`;
    tray.say(told);
    announce(told);
  }
  return messages;
}

/**
 * Ask `question` with its files: show it, start a generation, stream its reply. The
 * composer's draft and files are emptied only once the server has accepted the request;
 * `replacing` is a failed turn that this one takes the place of (Retry).
 * @param {string} question
 * @param {{fromComposer?: boolean, replacing?: Turn, files?: FileRef[]}} [how]
 */
async function ask(question, how = {}) {
  const attached = how.files ?? [];
  if (active || (question.trim() === "" && attached.length === 0)) return;
  const chosen = requestOptions(conversation.container);
  if (!chosen) return;
  if (how.replacing) dropTurn(how.replacing);

  const focusOnRetry = document.activeElement?.classList.contains("retry");
  transcript.hideRetries();
  if (focusOnRetry) prompt.focus(); // the button just vanished under the focus
  const turn = new Turn(question, attached, showQuestion(question, attached), transcript.addReply());
  active = turn;
  store.saveNow();
  setBusy(true);
  announce("Claude is replying…");

  let created;
  try {
    const request = { ...chosen, messages: await messagesFor(question, attached) };
    if (turn.finished) return; // stopped while the files were read
    created = await createStream(request);
  } catch (error) {
    failStart(turn, error);
    if (error instanceof ApiError && error.status === 401) signIn.show("Sign in, then Retry.");
    return;
  }
  if (!adopt(turn, created)) return;
  if (how.fromComposer && prompt.value === question) clearDraft();
  if (how.fromComposer && attached.length > 0 && sameFiles(tray.refs, attached)) tray.clear();
  store.saveNow();
  follow(turn, created.url);
}

/**
 * The question's bubble, with its files; their pictures come from the file store.
 * @param {string} question
 * @param {FileRef[]} attached
 */
function showQuestion(question, attached) {
  for (const ref of attached) conversationFiles.add(ref.hash);
  return transcript.addUserTurn(question, attached, (chip, ref) => void showFile(chip, ref, files));
}

/**
 * @param {FileRef[]} a
 * @param {FileRef[]} b
 */
function sameFiles(a, b) {
  return a.length === b.length && a.every((ref, index) => ref.hash === b[index].hash);
}

/**
 * Remove a finished turn from the page and from storage (the latest one: only it has
 * Retry). A failed turn was never part of the conversation sent onwards.
 * @param {Turn} turn
 */
function dropTurn(turn) {
  turn.userTurn.remove();
  turn.reply.node.remove();
  store.removeLast();
}

function clearDraft() {
  prompt.value = "";
  saveDraft("");
  autosize();
}

/**
 * Follow a turn's stream from `url` until it ends.
 * @param {Turn} turn
 * @param {string} url
 */
function follow(turn, url) {
  const { reply } = turn;
  turn.stream = openStream(url, {
    onEntry(entry, eventId) {
      if (entry[0] === "meta" && entry[1].provider) providerEl.textContent = entry[1].provider;
      turn.apply(entry, true);
      if (eventId) turn.lastEventId = eventId;
      store.saveSoon(SAVE_EVERY_MS);
    },
    onDone() {
      if (turn.answerTools()) {
        void continueWithTools(turn);
        return;
      }
      const reason = turn.stopReason;
      finish(turn, reason === "cancelled" ? "cancelled" : reason === "refusal" ? "refused" : "done");
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
      if (leaving) {
        // Keep the reply in flight in storage: the next load of this tab resumes it.
        setTimeout(() => {
          leaving = false;
          if (!turn.finished && turn.url) follow(turn, resumeUrl(turn.url, turn.lastEventId));
        }, STAYED_MS);
        return;
      }
      finish(turn, "interrupted", INTERRUPTED);
    },
  });
}

/**
 * Send the conversation with the answers to the reply's tool calls, and follow the
 * continuation into the same turn. Its stream id is forgotten until the server answers:
 * a reload before then sends the continuation again (an orphaned first one is cancelled
 * by the resume window, as nobody follows it).
 * @param {Turn} turn
 */
async function continueWithTools(turn) {
  const chosen = requestOptions(turn.exchange.container ?? conversation.container);
  if (!chosen) {
    finish(turn, "error", BAD_OPTIONS);
    return;
  }
  turn.id = null;
  turn.url = null;
  turn.lastEventId = null;
  store.saveNow();
  let created;
  try {
    const messages = await messagesFor(turn.question, turn.files);
    messages.push(...turn.exchange.steps);
    if (turn.finished) return;
    created = await createStream({ ...chosen, messages });
  } catch (error) {
    if (leaving) {
      // The page is going away, which aborts the POST: the next load sends it again.
      setTimeout(() => {
        leaving = false;
        if (!turn.finished && !turn.url) void continueWithTools(turn);
      }, STAYED_MS);
      return;
    }
    failStart(turn, error);
    return;
  }
  if (!adopt(turn, created)) return;
  store.saveNow();
  follow(turn, created.url);
}

/**
 * Ends a turn whose POST /api/streams failed, with the error it met.
 * @param {Turn} turn
 * @param {unknown} error
 */
function failStart(turn, error) {
  const shown = error instanceof ApiError
    ? { type: error.type, message: error.message }
    : { type: "client_error", message: String(error) };
  finish(turn, "error", shown);
}

/**
 * The stream a POST created becomes the turn's; unless Stop was pressed while the POST
 * was in flight, and then the stream is cancelled. Whether the turn took it.
 * @param {Turn} turn
 * @param {{id: string, url: string}} created
 */
function adopt(turn, created) {
  if (turn.finished) {
    void cancelStream(created.id);
    return false;
  }
  turn.id = created.id;
  turn.url = created.url;
  return true;
}

/**
 * Show how a turn ended: status, error with Retry, or a plain notice.
 * @param {Turn} turn
 * @param {Outcome} outcome
 * @param {ShownError | undefined} error
 * @param {boolean} canRetry
 */
function showOutcome(turn, outcome, error, canRetry) {
  const { reply } = turn;
  const usage = turn.record.usage;
  const retry = canRetry ? () => void ask(turn.question, { replacing: turn, files: turn.files }) : null;
  if (outcome === "error" || outcome === "interrupted") {
    reply.setStatus(outcome);
    reply.showError(error ?? INTERRUPTED, retry);
  } else if (outcome === "cancelled") {
    reply.setStatus("cancelled");
  } else if (outcome === "refused") {
    reply.setStatus("refused");
    const details = usage?.stop_details;
    const category = details?.category ? ` (${details.category.replaceAll("_", " ")})` : "";
    reply.showNotice(`Claude declined to continue this reply${category}.`, details?.explanation ?? undefined);
  } else if (turn.stopReason === "compaction") {
    reply.setStatus("done", "paused after summarizing");
    reply.showNotice(
      "Claude summarized the earlier turns and paused.",
      "Send a message to go on from the summary.",
    );
  } else if (turn.stopReason === "model_context_window_exceeded") {
    reply.setStatus("done", "context window full");
    reply.showNotice(
      "The conversation has filled the model's context window.",
      "Start a new chat, or ask again with a shorter history, to go on.",
    );
  } else {
    reply.setStatus("done", turn.stopReason === "max_tokens" ? "max_tokens reached" : undefined);
  }
}

/** @type {Record<Outcome, string>} */
const ANNOUNCED = {
  done: "Reply finished.",
  cancelled: "Reply stopped.",
  error: "Error.",
  interrupted: "The reply was interrupted.",
  refused: "Claude declined to continue.",
};

/**
 * End a turn once: close its stream, settle it into the history, show the outcome.
 * @param {Turn} turn
 * @param {Outcome} outcome
 * @param {ShownError} [error]
 */
function finish(turn, outcome, error) {
  if (turn.finished) return;
  turn.finished = true;
  turn.stream?.close();
  const { reply, metrics } = turn;
  reply.parts.finish();

  const kept = conversation.settle(turn.question, turn.files, turn.exchange, outcome);
  if (!kept) reply.markExcluded(turn.userTurn);
  showOutcome(turn, outcome, error, true);
  announce(error ? `${ANNOUNCED[outcome]} ${error.message}` : ANNOUNCED[outcome]);
  if (metrics.chunks > 0 || metrics.tokensFromUsage) reply.showMetrics(metrics);

  if (active === turn) active = null;
  store.addTurn(turn.toSaved(outcome, kept, error));
  store.saveNow();
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

/**
 * A turn from storage, shown as it was.
 * @param {string} question
 * @param {FileRef[]} attached
 * @param {import("./record.js").Entry[]} entries
 */
function replayTurn(question, attached, entries) {
  const turn = new Turn(question, attached, showQuestion(question, attached), transcript.addReply(),
    new ReplyMetrics(null));
  for (const entry of entries) turn.apply(entry, false);
  return turn;
}

/** Show the saved conversation, and resume the reply that was streaming, if any. */
function restore() {
  const saved = load();
  saved.turns.forEach((savedTurn, index) => {
    const turn = replayTurn(savedTurn.question, savedTurn.files ?? [], savedTurn.entries);
    turn.finished = true;
    turn.reply.parts.finish();
    if (savedTurn.kept) conversation.restore(savedTurn.question, turn.files, turn.exchange);
    else turn.reply.markExcluded(turn.userTurn);
    // Only the latest failure may be retried, and only when nothing else is running.
    const last = index === saved.turns.length - 1 && !saved.active;
    showOutcome(turn, savedTurn.outcome, savedTurn.error, last);
    if (savedTurn.metrics) {
      turn.reply.metricsEl.hidden = false;
      turn.reply.metricsEl.textContent = savedTurn.metrics.text;
      turn.reply.metricsEl.title = savedTurn.metrics.title;
    }
    store.addTurn(savedTurn);
  });
  if (saved.active) resume(saved.active);
  transcript.scrollToEnd();
}

/**
 * Carry on with a reply that was streaming when the page went away: its events so far
 * from storage, the rest from the server, starting after the last one kept.
 * @param {ActiveTurn} saved
 */
function resume(saved) {
  const turn = replayTurn(saved.question, saved.files ?? [], saved.entries);
  turn.id = saved.streamId;
  turn.url = saved.url;
  turn.lastEventId = saved.lastEventId;
  active = turn;
  setBusy(true);
  if (!turn.url && turn.awaitingContinuation) {
    void continueWithTools(turn);
    return;
  }
  if (!turn.url) {
    finish(turn, "interrupted", NOT_SENT);
    return;
  }
  announce("Resuming Claude's reply…");
  follow(turn, resumeUrl(turn.url, turn.lastEventId));
}

async function submitPrompt() {
  if (active) return; // one reply at a time; the draft stays in the box
  const attached = await tray.ready(); // files still being read go with the question
  const question = prompt.value;
  if (question.trim() === "" && attached.length === 0) return;
  if (signIn.shown) {
    signIn.show("Sign in first: your message stays in the box.");
    return;
  }
  prompt.focus();
  void ask(question, { fromComposer: true, files: attached });
}

const BANNER_KEY = "sseserver.demoBannerDismissed";

/** The demo banner goes for good once dismissed (this browser remembers it). */
function dismissableBanner() {
  const banner = document.getElementById("demo-banner");
  if (!banner) return;
  let store = null;
  try {
    store = window.localStorage;
  } catch {
    // No storage: the banner can still be dismissed for this page.
  }
  if (store?.getItem(BANNER_KEY) === "1") {
    banner.remove();
    return;
  }
  find(banner, "#dismiss-banner", HTMLButtonElement).addEventListener("click", () => {
    banner.remove();
    try {
      store?.setItem(BANNER_KEY, "1");
    } catch {
      // Storage full: dismissed for this page only.
    }
    prompt.focus();
  });
}

function autosize() {
  // Grow with the text up to the CSS max-height (CSSOM writes are allowed by the CSP).
  prompt.style.height = "auto";
  prompt.style.height = `${prompt.scrollHeight + 2}px`;
}

/** Show the options the server allows (options.js) and the files it takes (tray.js). */
async function showToggles() {
  const capabilities = await fetchCapabilities();
  tray.setLimits(limitsOf(capabilities?.attachments));
  options.show(capabilities);
  if (capabilities) await followModels();
}

/**
 * A server just started may not know every model's capabilities yet: ask /healthz again,
 * further apart each time and for a while only, until it does, so the effort levels and
 * the model's toggles appear without a reload.
 */
async function followModels() {
  let wait = MODELS_FIRST_WAIT_MS;
  let spent = 0;
  while (options.unknownModels().length > 0 && spent < MODELS_FOLLOW_MS) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    spent += wait;
    wait = Math.min(wait * 2, MODELS_LAST_WAIT_MS);
    const fresh = await fetchCapabilities();
    if (fresh) options.setModels(fresh.models);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  void submitPrompt();
});

prompt.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; never send mid-IME-composition.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    void submitPrompt();
  } else if (event.key === "Escape" && active) {
    stop();
  }
});
prompt.addEventListener("input", () => {
  autosize();
  saveDraft(prompt.value);
});

stopButton.addEventListener("click", stop);

find(body, "#new-chat", HTMLButtonElement).addEventListener("click", () => {
  stop();
  conversation.clear();
  transcript.clear();
  store.clear();
  // The files go with the conversation, but not those waiting in the composer.
  const waiting = new Set(tray.refs.map((ref) => ref.hash));
  void files.forget([...conversationFiles].filter((hash) => !waiting.has(hash)));
  conversationFiles.clear();
  announce("New conversation.");
  prompt.focus();
});

// Leaving the page (a reload, a closed tab) does not stop the reply: the server keeps
// it for its resume window, and the next load of this tab resumes it. Save now, while
// the record and the last event id agree.
window.addEventListener("beforeunload", () => {
  leaving = true;
});
window.addEventListener("pagehide", () => store.saveNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") store.saveNow();
});

setBusy(false);
const asked = initialSignIn(body);
if (asked !== null) signIn.show(asked);
dismissableBanner();
restore();
prompt.value = loadDraft();
autosize();
void showToggles();
void files.prune();
if (!signIn.shown) prompt.focus();
