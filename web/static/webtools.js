// @ts-check
// The web tools Claude runs on the API's side (docs/protocol.md, "Events"): a search shows
// "Searching: <query>", then its results (title and domain); a fetch shows "Fetching:
// <url>", then the page it fetched as a source, in the same list. Either shows its error
// code when it failed. Titles and URLs are untrusted: text nodes, and http(s) links only.

import { element } from "./dom.js";
import { domainOf, link } from "./links.js";

/** @typedef {import("./record.js").ToolCall} ToolCall */
/** @typedef {import("./record.js").ToolResult} ToolResult */

/** The labels of a web tool: while it runs, once done, when it failed. */
const LABELS = {
  web_search: { running: "Searching:", done: "Searched:", failed: "Search failed:", key: "query" },
  web_fetch: { running: "Fetching:", done: "Fetched:", failed: "Fetch failed:", key: "url" },
};

/**
 * Whether a call is one this module shows (by its name).
 * @param {string} name
 * @returns {name is "web_search" | "web_fetch"}
 */
export function isWebTool(name) {
  return name === "web_search" || name === "web_fetch";
}

/** A web search or fetch: what it looks for, then what it found, or its error. */
export class WebToolBlock {
  /**
   * @param {HTMLElement} parent
   * @param {ToolCall} call
   */
  constructor(parent, call) {
    this.labels = call.name === "web_fetch" ? LABELS.web_fetch : LABELS.web_search;
    this.node = element("div", "tool");
    this.node.dataset.tool = call.name;
    this.node.dataset.state = "running";
    const head = element("div", "tool-head");
    const target = call.input?.[this.labels.key];
    if (typeof target === "string") {
      this.label = element("span", "tool-label", this.labels.running);
      head.append(this.label, " ", element("q", "tool-query", target));
    } else {
      this.label = element("span", "tool-label", `Using ${call.name}…`);
      head.append(this.label);
    }
    this.node.append(head);
    parent.append(this.node);
  }

  /** @param {ToolResult} result */
  result(result) {
    if (this.node.dataset.state !== "running") return;
    if (result.error) {
      this.node.dataset.state = "error";
      this.label.textContent = this.labels.failed;
      const message = typeof result.error.message === "string" ? `: ${result.error.message}` : "";
      this.node.append(element("div", "tool-error mono", `${result.error.code}${message}`));
      return;
    }
    this.node.dataset.state = "done";
    this.label.textContent = this.labels.done;
    /** @type {{url: string, title: string | null}[]} */
    const pages = this.node.dataset.tool === "web_fetch"
      ? [{ url: String(result.url ?? ""), title: typeof result.title === "string" ? result.title : null }]
      : result.results ?? [];
    if (this.node.dataset.tool === "web_search") {
      this.node.append(element("span", "tool-count", ` · ${pages.length} ${pages.length === 1 ? "result" : "results"}`));
    }
    if (pages.length === 0) return;
    const list = element("ol", "search-results");
    for (const page of pages) {
      const li = document.createElement("li");
      li.append(link(page.url, page.title || page.url), element("span", "domain", domainOf(page.url)));
      list.append(li);
    }
    this.node.append(list);
  }

  /** The reply ended before the call had a result. */
  end() {
    if (this.node.dataset.state === "running") this.node.dataset.state = "stopped";
  }
}
