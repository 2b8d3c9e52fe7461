// @ts-check
// The body of one reply, in the order Claude produced it: "Thinking" sections, web
// searches and fetches with what they found (webtools.js), code runs (coderun.js), tool
// calls (tools.js), notes (notes.js: a compaction, a file put in the container, content
// the server does not know), and Markdown text with numbered citation markers; then the
// list of sources the markers point to: web pages, and passages of the documents the user
// sent (title, page, the text cited). Everything but the Markdown is built with DOM calls
// and text nodes; every link is http(s), opens a new tab, and sends no referrer.

import { CodeRunPanel, isCodeRun } from "./coderun.js";
import { element } from "./dom.js";
import { domainOf, link } from "./links.js";
import { MarkdownView } from "./markdown.js";
import { compactionMarker, fileNote, unsupportedNote } from "./notes.js";
import { ToolPanel } from "./tools.js";
import { isWebTool, WebToolBlock } from "./webtools.js";

/** @typedef {import("./record.js").Citation} Citation */
/** @typedef {import("./record.js").ToolCall} ToolCall */
/** @typedef {import("./record.js").ToolResult} ToolResult */
/** @typedef {import("./record.js").Block} Block */
/** @typedef {import("./record.js").Compaction} Compaction */
/** @typedef {import("./record.js").UnknownBlock} UnknownBlock */
/** @typedef {WebToolBlock | CodeRunPanel | ToolPanel} ToolView */

/** How often a running "Thinking" section updates its clock (ms). */
const CLOCK_MS = 100;

const HIDDEN_THINKING = {
  redacted: "Thinking redacted",
  omitted: "Thinking not shown",
};
const HIDDEN_THINKING_WHY = {
  redacted: "Part of Claude's reasoning was encrypted by the API for safety reasons; it still counted for the reply.",
  omitted: "The API returned no text for this part of Claude's reasoning.",
};

/** @param {number} ms */
function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Whether a citation points into a document the user sent, rather than at a web page.
 * @param {Citation} citation
 */
function isDocumentCitation(citation) {
  return citation.url === null && typeof citation.document_index === "number";
}

/**
 * A document's name in its citations; the API sends null for one sent without a title.
 * @param {Citation} citation
 */
function documentTitle(citation) {
  return citation.title || `Document ${(citation.document_index ?? 0) + 1}`;
}

/**
 * "p. 3", or "pp. 3–4" for pages 3 to 4 (the API's end page is exclusive); "" when the
 * citation is not of a PDF's pages.
 * @param {Citation} citation
 */
function pageOf(citation) {
  const start = citation.start_page_number;
  const end = citation.end_page_number;
  if (citation.type !== "page_location" || typeof start !== "number") return "";
  const last = typeof end === "number" ? end - 1 : start;
  return last > start ? `pp. ${start}–${last}` : `p. ${start}`;
}

/** A collapsible "Thinking" section that streams live with its own clock. */
class ThinkingSection {
  /**
   * @param {HTMLElement} parent
   * @param {number} elapsedMs time already spent (a section restored after a reload)
   */
  constructor(parent, elapsedMs) {
    this.node = /** @type {HTMLDetailsElement} */ (element("details", "thinking"));
    this.node.open = true;
    const summary = element("summary", "thinking-head");
    this.label = element("span", "thinking-label", "Thinking");
    this.clock = element("span", "thinking-time", seconds(elapsedMs));
    summary.append(this.label, this.clock);
    this.body = element("div", "thinking-text");
    this.text = document.createTextNode("");
    this.body.append(this.text);
    this.node.append(summary, this.body);
    parent.append(this.node);
    this.startedAt = performance.now() - elapsedMs;
    /** @type {number | null} */
    this.endedMs = null;
    this.timer = setInterval(() => this.tick(), CLOCK_MS);
  }

  /** @param {string} delta */
  append(delta) {
    this.text.appendData(delta);
  }

  elapsedMs() {
    return this.endedMs ?? performance.now() - this.startedAt;
  }

  tick() {
    this.clock.textContent = seconds(this.elapsedMs());
  }

  /**
   * The block is over: stop the clock at `ms` (or now).
   * @param {number} [ms]
   */
  end(ms) {
    if (this.endedMs !== null) return;
    clearInterval(this.timer);
    this.endedMs = ms ?? this.elapsedMs();
    this.node.classList.add("ended");
    this.label.textContent = "Thought for";
    this.tick();
  }
}

/**
 * The view of a call, by its tool's name: a web search or fetch, a code run, or a panel
 * (an operator's tool, an MCP server's, a tool search).
 * @param {HTMLElement} parent
 * @param {ToolCall} call
 * @param {boolean} seen false for the call of a result whose call this page did not see
 * @returns {ToolView}
 */
function toolView(parent, call, seen) {
  if (isWebTool(call.name)) return new WebToolBlock(parent, call);
  if (isCodeRun(call.name)) return new CodeRunPanel(parent, call.name, call.input ?? {});
  const panel = new ToolPanel(parent, call.name, call.server_name);
  if (seen) panel.complete(call.input);
  return panel;
}

export class ReplyParts {
  /**
   * @param {HTMLElement} root where the parts go, in order
   * @param {HTMLElement} sources the reply's "Sources" section
   * @param {() => void} onGrow the reply grew (the transcript follows it down)
   */
  constructor(root, sources, onGrow) {
    this.root = root;
    this.sourcesEl = sources;
    this.sourcesList = /** @type {HTMLOListElement} */ (sources.querySelector("ol"));
    this.onGrow = onGrow;
    /** @type {ThinkingSection | null} */
    this.thinkingPart = null;
    /** @type {ThinkingSection[]} */
    this.thoughts = [];
    /** @type {MarkdownView | null} the text part being written */
    this.textPart = null;
    /** @type {MarkdownView[]} */
    this.texts = [];
    /** @type {Map<string, ToolView>} web tools, code runs and tool calls, by call id */
    this.tools = new Map();
    /** @type {{url: string | null, title: string | null}[]} */
    this.sources = [];
    /** @type {Map<string, number>} source key -> its number */
    this.sourceNumbers = new Map();
    /** @type {Set<string>} the unknown content already noted */
    this.unsupportedSeen = new Set();
  }

  /**
   * @param {string} delta
   * @param {number} [elapsedMs] the section's time so far, for a restored one
   */
  thinking(delta, elapsedMs = 0) {
    if (!this.thinkingPart) {
      this.textPart = null;
      this.thinkingPart = new ThinkingSection(this.root, elapsedMs);
      this.thoughts.push(this.thinkingPart);
    }
    this.thinkingPart.append(delta);
    this.onGrow();
  }

  /** Milliseconds the open thinking section has run, 0 when none is open. */
  thinkingMs() {
    return this.thinkingPart ? Math.round(this.thinkingPart.elapsedMs()) : 0;
  }

  /** @param {string} reason "redacted" or "omitted" */
  thinkingHidden(reason) {
    this.newPart();
    const known = reason === "redacted" || reason === "omitted";
    const note = element("div", "thinking hidden-thinking", known ? HIDDEN_THINKING[reason] : `Thinking ${reason}`);
    note.dataset.reason = reason;
    if (known) note.title = HIDDEN_THINKING_WHY[reason];
    this.root.append(note);
    this.onGrow();
  }

  /**
   * A call of an operator's tool begins: its panel opens, and its input streams into it.
   * @param {{id: string, name: string}} start
   */
  toolStart(start) {
    this.newPart();
    this.tools.set(start.id, new ToolPanel(this.root, start.name));
    this.onGrow();
  }

  /** @param {{id: string, delta: string}} input */
  toolInput(input) {
    const panel = this.tools.get(input.id);
    if (panel instanceof ToolPanel) panel.appendInput(input.delta);
    this.onGrow();
  }

  /** @param {ToolCall} call */
  tool(call) {
    const known = this.tools.get(call.id);
    if (known instanceof ToolPanel) {
      known.complete(call.input);
      this.onGrow();
      return;
    }
    if (known) return; // a call has one view
    this.newPart();
    this.tools.set(call.id, toolView(this.root, call, true));
    this.onGrow();
  }

  /** @param {ToolResult} result */
  toolResult(result) {
    let view = this.tools.get(result.tool_use_id);
    if (!view) {
      // A result whose call this page never saw: still show it.
      this.newPart();
      const call = { id: result.tool_use_id, name: result.name, input: {}, server_name: result.server_name };
      view = toolView(this.root, call, false);
      this.tools.set(result.tool_use_id, view);
    }
    if (view instanceof ToolPanel) view.result(result, false);
    else view.result(result);
    this.onGrow();
  }

  /**
   * Earlier turns were summarized to make room (docs/protocol.md, "Server tools").
   * @param {Compaction} compaction
   */
  compaction(compaction) {
    this.newPart();
    this.root.append(compactionMarker(compaction.content));
    this.onGrow();
  }

  /**
   * Content of a type the server does not know: a note, once per block (and once per
   * type for the deltas of a known block).
   * @param {UnknownBlock} block
   */
  unsupported(block) {
    const key = `${block.kind}:${block.type}`;
    if (block.kind !== "block" && this.unsupportedSeen.has(key)) return;
    this.unsupportedSeen.add(key);
    this.newPart();
    this.root.append(unsupportedNote(block.type));
    this.onGrow();
  }

  /**
   * A file of the Files API was put in the code execution container.
   * @param {string} fileId
   */
  file(fileId) {
    this.newPart();
    this.root.append(fileNote(fileId));
    this.onGrow();
  }

  /** A part other than text or thinking begins: the text and thinking before it end. */
  newPart() {
    this.endThinking();
    this.textPart = null;
  }

  /**
   * The page's own answers to a turn's calls (tools.js): each shown in its call's panel.
   * @param {Block[]} answers
   */
  toolAnswers(answers) {
    for (const answer of answers) {
      const panel = this.tools.get(String(answer.tool_use_id));
      if (answer.type === "tool_result" && panel instanceof ToolPanel) panel.result(answer, true);
    }
    this.onGrow();
  }

  /** @param {string} delta */
  text(delta) {
    this.openText().append(delta);
  }

  /**
   * A citation supports the text just before it: a numbered marker goes there, and its
   * source joins the list under the reply (once per URL; a document's once per passage).
   * @param {Citation} citation
   */
  citation(citation) {
    const passage = isDocumentCitation(citation);
    const key = passage
      ? `document:${citation.document_index}:${pageOf(citation)}:${citation.cited_text}`
      : citation.url ?? `title:${citation.title ?? citation.cited_text}`;
    let n = this.sourceNumbers.get(key);
    if (n === undefined) {
      const page = pageOf(citation);
      const title = passage ? [documentTitle(citation), page].filter(Boolean).join(", ") : citation.title;
      this.sources.push({ url: citation.url, title });
      n = this.sources.length;
      this.sourceNumbers.set(key, n);
      if (passage) this.addPassage(citation);
      else this.addSource(citation);
    }
    (this.texts.at(-1) ?? this.openText()).cite(n);
  }

  /** @param {Citation} citation */
  addSource(citation) {
    const li = document.createElement("li");
    const title = citation.title || domainOf(citation.url) || citation.url || "Source";
    li.append(link(citation.url, title), element("span", "domain", domainOf(citation.url)));
    this.sourcesList.append(li);
    this.sourcesEl.hidden = false;
  }

  /**
   * A document's passage: its title, its page for a PDF, and the text cited.
   * @param {Citation} citation
   */
  addPassage(citation) {
    const li = element("li", "passage");
    li.append(element("span", "passage-title", documentTitle(citation)));
    const page = pageOf(citation);
    if (page) li.append(element("span", "passage-page", page));
    if (citation.cited_text) li.append(element("q", "passage-text", citation.cited_text));
    this.sourcesList.append(li);
    this.sourcesEl.hidden = false;
  }

  openText() {
    if (this.textPart) return this.textPart;
    this.endThinking();
    // The answer begins: fold the thinking above it.
    for (const section of this.thoughts) section.node.open = false;
    const root = element("div", "text-part markdown");
    this.root.append(root);
    this.textPart = new MarkdownView(root, (n) => this.sources[n - 1], this.onGrow);
    this.texts.push(this.textPart);
    return this.textPart;
  }

  /** @param {number} [ms] */
  endThinking(ms) {
    this.thinkingPart?.end(ms);
    this.thinkingPart = null;
  }

  /** The reply is over: stop every clock and render the text in full. */
  finish() {
    for (const section of this.thoughts) section.end();
    for (const tool of this.tools.values()) tool.end();
    this.thinkingPart = null;
    for (const text of this.texts) text.finish();
  }

  /** Whether any text has arrived. */
  get hasText() {
    return this.texts.some((text) => !text.empty);
  }
}
