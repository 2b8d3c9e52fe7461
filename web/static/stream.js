// The SSE half of the streams API (docs/protocol.md, "Events"): one EventSource per reply.
//
// EventSource reconnects by itself after a dropped connection, sending Last-Event-ID,
// and the server replays exactly the missed events; a reconnect after the stream has
// ended gets 204, which makes EventSource give up. So this module never reconnects on
// its own: it only reports what happens, and closes the EventSource on `done`/`error`.

/**
 * @typedef {object} StreamHandlers
 * @property {(meta: {stream: string, model: string, provider: string}) => void} onMeta
 * @property {(text: string) => void} onDelta        one `message` event's text
 * @property {(usage: {input_tokens: number, output_tokens: number, stop_reason: string}) => void} onUsage
 * @property {() => void} onDone
 * @property {(error: {type: string, message: string}) => void} onServerError
 * @property {() => void} onReconnecting   connection dropped; EventSource is retrying
 * @property {() => void} onResumed        connected again after a drop
 * @property {() => void} onLost           connection failed for good (EventSource gave up)
 */

/**
 * Subscribe to a generation's SSE stream.
 * @param {string} url  the `url` answered by POST /api/streams
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
        // A frame this page cannot read (not the JSON docs/protocol.md describes): end the reply visibly
        // rather than leave it hanging in "streaming".
        close();
        handlers.onServerError({ type: "bad_event", message: `Unreadable "${name}" event: ${error}` });
      }
    });
  };

  on("meta", (event) => handlers.onMeta(JSON.parse(event.data)));
  // `data` is a JSON string: JSON.parse gives the exact text delta.
  on("message", (event) => handlers.onDelta(String(JSON.parse(event.data))));
  on("usage", (event) => handlers.onUsage(JSON.parse(event.data)));
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
