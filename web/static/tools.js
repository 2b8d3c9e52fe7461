// @ts-check
// The operator's tools on the page (docs/protocol.md, "Tools"): a panel per call that shows
// its name, its input as it streams and then its result, folded once answered; the
// answers to the calls the client must run (browser_locale here, an error result for any
// other). An MCP server's tool is shown the same way, naming its server; a tool search's
// panel lists the tools it found.
// Tool names, inputs and results are untrusted: they reach the DOM as text nodes only, and
// an image result only as a data: URL of a raster type this module checked.

import { element } from "./dom.js";

/** @typedef {import("./record.js").Block} Block */
/** @typedef {import("./record.js").Entry} Entry */
/** @typedef {import("./record.js").ToolResult} ToolResult */
/** @typedef {import("./record.js").ToolTurn} ToolTurn */

/** Image types a result may show as a thumbnail (no SVG: it is a document, not a picture). */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The client tools this page runs: name -> the `tool_result` content for an input.
 * @type {Map<string, (input: Record<string, unknown>) => string>}
 */
const CLIENT_TOOLS = new Map([["browser_locale", browserLocale]]);

/** The browser's languages, in its order of preference, and its time zone. */
function browserLocale() {
  const languages = navigator.languages.length > 0 ? navigator.languages : [navigator.language];
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return `Languages: ${languages.join(", ")}. Time zone: ${zone}.`;
}

/**
 * Whether a `tool_result` is web search's (results or an error code), which the search
 * panel of parts.js shows, rather than a tool's `content`.
 * @param {ToolResult} result
 */
export function isSearchResult(result) {
  return result.content === undefined && (result.results !== undefined || result.error !== undefined);
}

/** One call of an operator's tool: open while it runs, folded once it has its result. */
export class ToolPanel {
  /**
   * @param {HTMLElement} parent
   * @param {string} name
   * @param {string} [server] the MCP server the call goes to (docs/protocol.md, "Server tools")
   */
  constructor(parent, name, server) {
    this.name = name;
    this.server = server ?? null;
    this.node = /** @type {HTMLDetailsElement} */ (element("details", "tool tool-call"));
    this.node.dataset.tool = name;
    if (server !== undefined) this.node.dataset.server = server;
    this.node.dataset.state = "running";
    this.node.open = true;
    const summary = element("summary", "tool-head");
    this.label = element("span", "tool-label");
    summary.append(this.label);
    this.inputText = document.createTextNode("");
    const input = element("pre", "tool-input mono");
    input.append(this.inputText);
    this.node.append(summary, section("Input", input));
    this.setLabel("Using", "…");
    parent.append(this.node);
  }

  /**
   * "Using <name>…", "Used <name>", with the name as code, and "on <server>" for an MCP
   * server's tool.
   * @param {string} before
   * @param {string} [after]
   */
  setLabel(before, after = "") {
    const server = this.server === null ? [] : [" on ", element("span", "tool-server", this.server)];
    this.label.replaceChildren(`${before} `, element("code", "tool-name", this.name), ...server, after);
  }

  /** @param {string} delta a piece of the input's JSON as Claude writes it */
  appendInput(delta) {
    this.inputText.appendData(delta);
  }

  /** @param {Record<string, unknown>} input the whole input, parsed */
  complete(input) {
    this.inputText.data = JSON.stringify(input ?? {}, null, 2);
  }

  /**
   * Show the result and fold the panel.
   * @param {ToolResult | Block} result a `tool_result` event, or a block this page answered with
   * @param {boolean} byPage the page ran the tool
   */
  result(result, byPage) {
    if (this.node.dataset.state !== "running") return; // a call has one result
    const error = /** @type {ToolResult} */ (result).error;
    const failed = result.is_error === true || error !== undefined;
    this.node.dataset.state = failed ? "error" : "done";
    if (byPage) this.node.dataset.runs = "client";
    if (failed) this.setLabel("Failed:");
    else this.setLabel("Used");
    const heading = `${failed ? "Error" : "Result"}${byPage ? " · answered by this page" : ""}`;
    this.node.append(section(heading, ...resultNodes(result, this.name)));
    if (result.truncated === true) this.node.append(element("div", "tool-empty", "(cut short by the server)"));
    this.node.open = false;
  }

  /** The reply ended before the call had a result. */
  end() {
    if (this.node.dataset.state !== "running") return;
    this.node.dataset.state = "stopped";
    this.setLabel("No result:");
  }
}

/**
 * A result as nodes: an API error's code and message, the tools a tool search found, or
 * a tool's content.
 * @param {ToolResult | Block} result
 * @param {string} name
 * @returns {Node[]}
 */
function resultNodes(result, name) {
  const error = /** @type {ToolResult} */ (result).error;
  if (error !== undefined) {
    const message = typeof error.message === "string" ? `: ${error.message}` : "";
    return [element("pre", "tool-output mono", `${error.code}${message}`)];
  }
  if (Array.isArray(result.tools)) {
    const found = result.tools.map(String).join(", ");
    return [found === "" ? element("div", "tool-empty", "(no tools found)") : element("pre", "tool-output mono", found)];
  }
  return contentNodes(result.content, name);
}

/**
 * A labelled part of a panel ("Input", "Result").
 * @param {string} heading
 * @param {...Node} nodes
 */
export function section(heading, ...nodes) {
  const part = element("div", "tool-io");
  part.append(element("div", "tool-io-label", heading), ...nodes);
  return part;
}

/**
 * A result's content as nodes: a string or `text` blocks as text, an `image` block as a
 * thumbnail when it is base64 of a raster type, anything else named by its type.
 * @param {unknown} content
 * @param {string} name the tool's name, for an image's alt text
 * @returns {Node[]}
 */
function contentNodes(content, name) {
  if (content === undefined || content === null || content === "") return [element("div", "tool-empty", "(empty)")];
  if (typeof content === "string") return [element("pre", "tool-output mono", content)];
  if (!Array.isArray(content)) return [element("pre", "tool-output mono", JSON.stringify(content))];
  return content.map((block) => {
    if (block?.type === "text" && typeof block.text === "string") {
      return element("pre", "tool-output mono", block.text);
    }
    const source = block?.type === "image" ? block.source : null;
    if (source?.type === "base64" && IMAGE_TYPES.has(source.media_type)
        && typeof source.data === "string" && BASE64.test(source.data)) {
      const img = /** @type {HTMLImageElement} */ (element("img", "tool-image"));
      img.alt = `An image from ${name}`;
      img.src = `data:${source.media_type};base64,${source.data}`;
      return img;
    }
    return element("div", "tool-empty", `(${typeof block?.type === "string" ? block.type : "unknown"} block not shown)`);
  });
}

/**
 * The `turn` a reply ended with whose calls this page has not answered yet, if any.
 * @param {Entry[]} entries
 * @returns {ToolTurn | null}
 */
export function unansweredTurn(entries) {
  /** @type {ToolTurn | null} */
  let pending = null;
  for (const entry of entries) {
    if (entry[0] === "turn") pending = entry[1];
    else if (entry[0] === "tool_answers") pending = null;
  }
  return pending;
}

/**
 * Whether the page answered a turn's tools and the continuation has not begun: what a
 * reload finds when it came before the server answered the continuation's POST.
 * @param {Entry[]} entries
 */
export function awaitingContinuation(entries) {
  return entries.at(-1)?.[0] === "tool_answers";
}

/**
 * This page's answers to a turn's calls, in the order of the calls: the server's own
 * results (`tool_results`) come first in the message and are not repeated here. A call
 * that waits for approval is denied (this page does not ask), so that the server answers
 * it and the conversation goes on.
 * @param {ToolTurn} turn
 * @returns {Block[]}
 */
export function answerTools(turn) {
  const answered = new Set((turn.tool_results ?? []).map((result) => result.tool_use_id));
  const waiting = new Set(turn.needs_approval ?? []);
  /** @type {Block[]} */
  const answers = [];
  for (const call of turn.content) {
    if (call.type !== "tool_use" || typeof call.id !== "string" || answered.has(call.id)) continue;
    if (waiting.has(call.id)) {
      answers.push({ type: "tool_approval", tool_use_id: call.id, approved: false,
                     reason: "This page cannot ask the user for approval." });
      continue;
    }
    const name = String(call.name);
    const run = CLIENT_TOOLS.get(name);
    /** @type {Block} */
    const answer = { type: "tool_result", tool_use_id: call.id };
    if (!run) {
      answer.content = `This page does not implement the tool "${name}".`;
      answer.is_error = true;
    } else {
      try {
        answer.content = run(/** @type {Record<string, unknown>} */ (call.input ?? {}));
      } catch {
        answer.content = `This page could not run the tool "${name}".`;
        answer.is_error = true;
      }
    }
    answers.push(answer);
  }
  return answers;
}
