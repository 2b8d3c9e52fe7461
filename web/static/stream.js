// @ts-check
// The SSE half of the streams API (docs/protocol.md, "Events"): one EventSource per reply.
//
// EventSource reconnects by itself after a dropped connection, sending Last-Event-ID,
// and the server replays exactly the missed events; a reconnect after the stream has
// ended gets 204, which makes EventSource give up. So this module never reconnects on
// its own: it only reports what happens, and closes the EventSource on `done`/`error`.
// A page that was reloaded mid-reply opens the stream with `?lastEventId=` instead,
// because a new EventSource cannot send the header (docs/protocol.md, "Ids and resume").

/** @typedef {import("./record.js").Entry} Entry */

/**
 * @typedef {object} StreamHandlers
 * @property {(entry: Entry, eventId: string) => void} onEntry  one event of the reply
 * @property {() => void} onDone
 * @property {(error: {type: string, message: string}) => void} onServerError
 * @property {() => void} onReconnecting   connection dropped; EventSource is retrying
 * @property {() => void} onResumed        connected again after a drop
 * @property {() => void} onLost           connection failed for good (EventSource gave up):
 *   the stream ended while nobody listened, or is no longer held
 */

/**
 * The URL to follow a stream from: the start, or just after `lastEventId`.
 * @param {string} url the `url` answered by POST /api/streams
 * @param {string | null} lastEventId
 */
export function resumeUrl(url, lastEventId) {
  return lastEventId ? `${url}?lastEventId=${encodeURIComponent(lastEventId)}` : url;
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {string} data @returns {string} */
function parseString(data) {
  const value = JSON.parse(data);
  if (typeof value !== "string") throw new TypeError("not a JSON string");
  return value;
}

/**
 * @param {string} data
 * @param {string[]} keys the keys that must be present
 * @returns {any} an object with those keys; the contract gives the rest of its shape
 */
function parseObject(data, keys) {
  const value = JSON.parse(data);
  if (!isObject(value)) throw new TypeError("not a JSON object");
  for (const key of keys) if (!(key in value)) throw new TypeError(`no "${key}"`);
  return value;
}

/**
 * @param {string} data
 * @returns {import("./record.js").ToolTurn}
 */
function parseTurn(data) {
  const turn = parseObject(data, ["role", "content"]);
  if (!Array.isArray(turn.content)) throw new TypeError("content is not a list");
  return turn;
}

/**
 * Each event name of the reply, and how its data becomes an Entry (`tool_answers` is the
 * page's own, never an event).
 * @type {Record<Exclude<Entry[0], "tool_answers">, (data: string) => Entry>}
 */
const PARSERS = {
  meta: (data) => ["meta", parseObject(data, ["model"])],
  thinking: (data) => ["thinking", parseString(data), 0],
  thinking_hidden: (data) => ["thinking_hidden", parseObject(data, ["reason"])],
  tool_start: (data) => ["tool_start", parseObject(data, ["id", "name"])],
  tool_input: (data) => ["tool_input", parseObject(data, ["id", "delta"])],
  tool: (data) => ["tool", parseObject(data, ["id", "name"])],
  tool_result: (data) => ["tool_result", parseObject(data, ["tool_use_id"])],
  // `data` is a JSON string: JSON.parse gives the exact text delta.
  message: (data) => ["message", parseString(data)],
  citation: (data) => ["citation", parseObject(data, ["cited_text"])],
  turn: (data) => ["turn", parseTurn(data)],
  compaction: (data) => ["compaction", parseObject(data, ["content", "block"])],
  container: (data) => ["container", parseObject(data, ["id"])],
  file: (data) => ["file", parseObject(data, ["file_id"])],
  block: (data) => ["block", parseObject(data, ["kind", "type"])],
  usage: (data) => ["usage", parseObject(data, [])],
};

/**
 * Subscribe to a generation's SSE stream.
 * @param {string} url
 * @param {StreamHandlers} handlers
 * @returns {{close: () => void}}
 */
export function openStream(url, handlers) {
  const source = new EventSource(url);
  let closed = false;
  let reconnecting = false;

  const close = () => {
    closed = true;
    source.close();
  };

  // Every named event proves the connection is up again after a drop.
  /** @param {string} name @param {(event: MessageEvent) => void} handle */
  const on = (name, handle) => {
    source.addEventListener(name, (event) => {
      if (closed) return;
      if (reconnecting) {
        reconnecting = false;
        handlers.onResumed();
      }
      try {
        handle(event);
      } catch (error) {
        // A frame this page cannot read (not the JSON docs/protocol.md describes): end the
        // reply visibly rather than leave it hanging in "streaming".
        close();
        handlers.onServerError({ type: "bad_event", message: `Unreadable "${name}" event: ${error}` });
      }
    });
  };

  for (const [name, parse] of Object.entries(PARSERS)) {
    on(name, (event) => handlers.onEntry(parse(event.data), event.lastEventId));
  }
  on("done", () => {
    close();
    handlers.onDone();
  });

  source.addEventListener("open", () => {
    if (closed || !reconnecting) return;
    reconnecting = false;
    handlers.onResumed();
  });

  // Two different things arrive as "error": the server's `error` event (a MessageEvent
  // with JSON data, the upstream failed) and EventSource's own connection error (a
  // plain Event, no data). Only the first ends the reply; the second is a reconnect
  // unless EventSource has given up (readyState CLOSED: a 204, 404, 401, ...).
  source.addEventListener("error", (event) => {
    if (closed) return;
    if (event instanceof MessageEvent && typeof event.data === "string" && event.data !== "") {
      close();
      handlers.onServerError(parseServerError(event.data));
    } else if (source.readyState === EventSource.CONNECTING) {
      if (!reconnecting) {
        reconnecting = true;
        handlers.onReconnecting();
      }
    } else {
      close();
      handlers.onLost();
    }
  });

  return { close };
}

/** @param {string} data */
function parseServerError(data) {
  try {
    const error = JSON.parse(data);
    return {
      type: typeof error?.type === "string" ? error.type : "error",
      message: typeof error?.message === "string" ? error.message : "The reply failed.",
    };
  } catch {
    return { type: "error", message: "The reply failed." };
  }
}
