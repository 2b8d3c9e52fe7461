// @ts-check
// The JSON half of the streams API (docs/protocol.md, "Requests"): start a generation,
// cancel one, and what the server allows (`/healthz` capabilities). Every failure of the
// first two becomes an ApiError carrying the server's {"error": {type, message}}.

export class ApiError extends Error {
  /**
   * @param {string} type    machine-readable type, e.g. "invalid_request_error"
   * @param {string} message safe to show to the user
   * @param {number} status  HTTP status, 0 when the server was not reached
   */
  constructor(type, message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.type = type;
    this.status = status;
  }
}

const STREAMS_URL = "/api/streams";

/**
 * The body of POST /api/streams. `thinking` and the server tools are sent only when the
 * server's capabilities allow them; `container` only with code execution on.
 * @typedef {object} StreamRequest
 * @property {import("./exchange.js").Message[]} messages
 * @property {string} [model]
 * @property {string} [system]
 * @property {number} [max_tokens]
 * @property {"off" | "adaptive"} [thinking]
 * @property {"off" | "on"} [web_search]
 * @property {"off" | "on"} [web_fetch]
 * @property {"off" | "on"} [code_execution]
 * @property {"off" | "on"} [tool_search]
 * @property {string} [container] the container an earlier reply's code ran in
 * @property {"low" | "medium" | "high" | "xhigh" | "max"} [effort]
 */

/**
 * What the server allows beyond plain text (`capabilities` of /healthz).
 * @typedef {object} Capabilities
 * @property {{max_tokens: number} | false} thinking
 * @property {{max_uses: number} | false} web_search
 * @property {{max_uses: number} | false} web_fetch
 * @property {boolean} code_execution
 * @property {boolean} tool_search
 * @property {Record<string, ModelCapabilities>} models what each model can do, by id
 * @property {string} [prompt_cache]
 * @property {boolean} [client_system] false when the server refuses a client's system prompt
 * @property {unknown} [attachments] what files a request may carry (attachments.js reads it)
 */

/**
 * A model's capabilities as the server knows them: its effort levels (false when it has
 * none), and whether it can fetch pages and run code.
 * @typedef {object} ModelCapabilities
 * @property {string[] | false} [effort]
 * @property {boolean} [web_fetch]
 * @property {boolean} [code_execution]
 */

/**
 * POST /api/streams. Resolves to {id, url} (201); rejects with an ApiError.
 * @param {StreamRequest} body
 * @returns {Promise<{id: string, url: string}>}
 */
export async function createStream(body) {
  let response;
  try {
    response = await fetch(STREAMS_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError("network_error", "Could not reach the server. Check the connection and try again.");
  }
  if (response.status !== 201) throw await errorFrom(response);
  const created = await response.json();
  if (typeof created?.id !== "string" || typeof created?.url !== "string") {
    throw new ApiError("bad_response", "The server answered without a stream id.", response.status);
  }
  return created;
}

/**
 * DELETE /api/streams/<id>: stop the generation upstream (the Stop button).
 * Best effort: when it fails, the server still cancels the upstream once no
 * subscriber has come back within its resume window (docs/protocol.md, "Disconnects").
 * @param {string} id
 */
export async function cancelStream(id) {
  try {
    // keepalive lets the request finish even if the page is being closed.
    await fetch(`${STREAMS_URL}/${encodeURIComponent(id)}`, {
      method: "DELETE",
      credentials: "same-origin",
      keepalive: true,
    });
  } catch {
    // Nothing useful to tell the user: the reply is already marked stopped.
  }
}

/**
 * GET /healthz's capabilities; null when the server does not report them (or cannot be
 * reached), which shows no toggle.
 * @returns {Promise<Capabilities | null>}
 */
export async function fetchCapabilities() {
  try {
    const response = await fetch("/healthz", { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const body = await response.json();
    const capabilities = body?.capabilities;
    if (typeof capabilities !== "object" || capabilities === null) return null;
    return {
      thinking: typeof capabilities.thinking === "object" && capabilities.thinking ? capabilities.thinking : false,
      web_search: typeof capabilities.web_search === "object" && capabilities.web_search ? capabilities.web_search : false,
      web_fetch: typeof capabilities.web_fetch === "object" && capabilities.web_fetch ? capabilities.web_fetch : false,
      code_execution: capabilities.code_execution === true,
      tool_search: capabilities.tool_search === true,
      models: typeof capabilities.models === "object" && capabilities.models ? capabilities.models : {},
      prompt_cache: capabilities.prompt_cache,
      client_system: capabilities.client_system !== false,
      attachments: capabilities.attachments,
    };
  } catch {
    return null;
  }
}

/**
 * Turn a non-201 answer into an ApiError, preferring the JSON error body.
 * @param {Response} response
 */
async function errorFrom(response) {
  let type = `http_${response.status}`;
  let message = `The server answered ${response.status} ${response.statusText}`.trim() + ".";
  try {
    const body = await response.json();
    if (typeof body?.error?.type === "string") type = body.error.type;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON (a proxy error page, say): keep the generic message.
  }
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter && /^\d+$/.test(retryAfter)) {
    message = `${message.replace(/[.!?]?\s*$/, ".")} Try again in ${retryAfter} s.`;
  }
  return new ApiError(type, message, response.status);
}
