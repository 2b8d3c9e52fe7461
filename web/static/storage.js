// @ts-check
// The conversation in the tab's sessionStorage, so that a reload (or a tab reopened
// with Ctrl+Shift+T, which restores sessionStorage) shows it again and resumes the
// reply that was streaming.
//
// sessionStorage rather than localStorage: the server keeps no conversations and holds
// a stream only for its resume window, so nothing is gained by keeping a chat past the
// tab; one tab is one conversation, so two tabs never overwrite each other's; and the
// text does not outlive the browser session on a shared computer. "New chat" clears it.
// Attached files are kept here as references only (attachments.js): their bytes, which
// could exceed the storage's quota, are in IndexedDB (filestore.js).

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./record.js").Entry} Entry */

/** @typedef {"done" | "cancelled" | "error" | "interrupted" | "refused"} Outcome */

/**
 * A finished turn, as shown.
 * @typedef {object} SavedTurn
 * @property {string} question
 * @property {FileRef[]} [files] the files sent with the question
 * @property {Entry[]} entries
 * @property {Outcome} outcome
 * @property {boolean} kept whether it is part of the conversation sent onwards
 * @property {{type: string, message: string}} [error]
 * @property {{text: string, title: string}} [metrics]
 */

/**
 * The turn being streamed: enough to resume it exactly where this page left it.
 * @typedef {object} ActiveTurn
 * @property {string} question
 * @property {FileRef[]} [files]
 * @property {string | null} streamId  null until POST /api/streams has answered
 * @property {string | null} url
 * @property {string | null} lastEventId the id of the last event in `entries`
 * @property {Entry[]} entries
 */

/** @typedef {{turns: SavedTurn[], active: ActiveTurn | null}} Saved */

const KEY = "sseserver.chat";
const VERSION = 1;

/** @returns {Storage | null} none when the browser refuses storage (some private modes) */
function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

const DRAFT_KEY = "sseserver.draft";

/** @returns {string} the composer's text as it was when the page went away */
export function loadDraft() {
  return storage()?.getItem(DRAFT_KEY) ?? "";
}

/** @param {string} text the composer's text, kept until the server accepts it */
export function saveDraft(text) {
  try {
    if (text) storage()?.setItem(DRAFT_KEY, text);
    else storage()?.removeItem(DRAFT_KEY);
  } catch {
    // Storage full: the draft is still in the box.
  }
}

/** @returns {Saved} */
export function load() {
  const empty = { turns: [], active: null };
  const raw = storage()?.getItem(KEY);
  if (!raw) return empty;
  try {
    const saved = JSON.parse(raw);
    if (saved?.version !== VERSION || !Array.isArray(saved.turns)) return empty;
    return { turns: saved.turns, active: saved.active ?? null };
  } catch {
    return empty;
  }
}

/**
 * Writes the conversation. Finished turns are serialised once and kept as JSON, so a
 * save while a long reply streams costs the reply in flight, not the whole history.
 */
export class ChatStore {
  /** @param {() => ActiveTurn | null} activeOf the turn in flight, read at each save */
  constructor(activeOf) {
    this.activeOf = activeOf;
    /** @type {string[]} JSON of each finished turn */
    this.turns = [];
    this.timer = 0;
  }

  /** @param {SavedTurn} turn */
  addTurn(turn) {
    this.turns.push(JSON.stringify(turn));
  }

  clear() {
    this.turns = [];
    this.saveNow();
  }

  /** Forget the latest finished turn (a failed one that Retry replaces). */
  removeLast() {
    this.turns.pop();
    this.saveNow();
  }

  /**
   * Save within `delayMs` (several changes, one write).
   * @param {number} delayMs
   */
  saveSoon(delayMs) {
    if (this.timer !== 0) return;
    this.timer = window.setTimeout(() => this.saveNow(), delayMs);
  }

  /**
   * Save at once. When the storage is full, the oldest turns are left out of what is
   * saved (the page still shows them) until it fits.
   */
  saveNow() {
    clearTimeout(this.timer);
    this.timer = 0;
    const store = storage();
    if (!store) return;
    const active = JSON.stringify(this.activeOf());
    for (let skip = 0; skip <= this.turns.length; skip += 1) {
      const turns = this.turns.slice(skip).join(",");
      try {
        store.setItem(KEY, `{"version":${VERSION},"turns":[${turns}],"active":${active}}`);
        return;
      } catch {
        // QuotaExceededError: try again with fewer turns.
      }
    }
    store.removeItem(KEY);
  }
}
