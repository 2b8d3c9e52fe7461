// @ts-check
// Code that Claude runs in the API's container (docs/protocol.md, "Server tools"): one
// folded panel per run, open while it runs. A run of code or of a shell command shows
// what ran, its stdout, its stderr and its return code; a text editor's run shows its
// command and path, the edit it made (the new file, or what was replaced with what) and
// the editor's answer. The files a run created are listed by name and id. Everything here
// is the model's or the container's text: text nodes only.

import { element } from "./dom.js";
import { section } from "./tools.js";

/** @typedef {import("./record.js").ToolResult} ToolResult */

/** @typedef {"code_execution" | "bash_code_execution" | "text_editor_code_execution"} RunName */

/**
 * What each kind of run is called in its panel's summary: while it runs, once done.
 * @type {Record<RunName, [string, string]>}
 */
const SUMMARIES = {
  code_execution: ["Running code…", "Ran code"],
  bash_code_execution: ["Running a command…", "Ran a command"],
  text_editor_code_execution: ["Editing a file…", "Edited a file"],
};
/**
 * The text editor's commands, said as done (the path follows).
 * @type {Record<string, string>}
 */
const EDITED = { view: "Viewed", create: "Created", str_replace: "Edited" };

/**
 * Whether a call is a run this module shows (by its name).
 * @param {string} name
 * @returns {name is RunName}
 */
export function isCodeRun(name) {
  return Object.hasOwn(SUMMARIES, name);
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function stringOr(value) {
  return typeof value === "string" ? value : null;
}

/**
 * Text in a scrolling block, or "(empty)".
 * @param {string} text
 */
function output(text) {
  return text === "" ? element("div", "tool-empty", "(empty)") : element("pre", "tool-output mono", text);
}

/** One run in the container: what ran, then what it gave. */
export class CodeRunPanel {
  /**
   * @param {HTMLElement} parent
   * @param {RunName} name
   * @param {Record<string, unknown>} input the call's input; {} when the call was not seen
   */
  constructor(parent, name, input) {
    this.name = name;
    this.node = /** @type {HTMLDetailsElement} */ (element("details", "tool tool-call code-run"));
    this.node.dataset.tool = name;
    this.node.dataset.state = "running";
    this.node.open = true;
    const summary = element("summary", "tool-head");
    this.label = element("span", "tool-label", SUMMARIES[name][0]);
    summary.append(this.label);
    this.node.append(summary);
    /** @type {Record<string, unknown>} */
    this.input = {};
    this.showInput(input);
    parent.append(this.node);
  }

  /**
   * What ran: the code, the command, or the editor's command, path and edit. Shown once:
   * a result that names its command (a run whose call was not seen) fills it in.
   * @param {Record<string, unknown>} raw its keys without a value are left out
   */
  showInput(raw) {
    const input = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined && value !== null));
    if (Object.keys(this.input).length > 0 || Object.keys(input).length === 0) return;
    this.input = input;
    const code = stringOr(input.code);
    const command = stringOr(input.command);
    if (this.name === "code_execution" && code !== null) {
      this.node.append(section("Code", element("pre", "tool-input mono", code)));
    } else if (this.name === "bash_code_execution" && command !== null) {
      this.node.append(section("Command", element("pre", "tool-input mono", command)));
    } else if (this.name === "text_editor_code_execution") {
      const path = stringOr(input.path);
      this.node.append(section("Command", element("pre", "tool-input mono", [command, path].filter(Boolean).join(" "))));
      const fileText = stringOr(input.file_text);
      const oldText = stringOr(input.old_str);
      const newText = stringOr(input.new_str);
      if (fileText !== null) this.node.append(section("New file", output(fileText)));
      if (oldText !== null) this.node.append(section("Replace", output(oldText)));
      if (newText !== null) this.node.append(section("With", output(newText)));
    } else {
      this.node.append(section("Input", element("pre", "tool-input mono", JSON.stringify(input, null, 2))));
    }
  }

  /**
   * Show the run's result and fold the panel.
   * @param {ToolResult} result
   */
  result(result) {
    if (this.node.dataset.state !== "running") return; // a call has one result
    this.showInput({ command: result.command, path: result.path });
    if (result.error) {
      this.node.dataset.state = "error";
      this.label.textContent = "Run failed";
      const message = typeof result.error.message === "string" ? `: ${result.error.message}` : "";
      this.node.append(section("Error", element("pre", "tool-output mono", `${result.error.code}${message}`)));
      this.node.open = false;
      return;
    }
    this.node.dataset.state = "done";
    if (this.name === "text_editor_code_execution") this.editorResult(result);
    else this.processResult(result);
    this.node.open = false;
  }

  /** @param {ToolResult} result a code or command run's: its streams, code and files */
  processResult(result) {
    this.label.textContent = SUMMARIES[this.name][1];
    const code = typeof result.return_code === "number" ? result.return_code : null;
    if (code !== null) this.label.append(element("span", "tool-count", ` · exit ${code}`));
    if (result.stdout === null) {
      this.node.append(section("Output", element("div", "tool-empty", "(encrypted by the API, not shown)")));
    } else {
      this.node.append(section("Stdout", output(stringOr(result.stdout) ?? "")));
      this.node.append(section("Stderr", output(stringOr(result.stderr) ?? "")));
    }
    this.node.append(section("Return code", element("div", "tool-output mono", code === null ? "unknown" : String(code))));
    const files = Array.isArray(result.files) ? result.files : [];
    if (files.length === 0) return;
    const list = element("ul", "run-files");
    for (const file of files) {
      const li = element("li", "run-file");
      li.append(element("span", "run-file-name", stringOr(file?.name) ?? "(unnamed file)"), " ",
                element("code", "run-file-id", String(file?.file_id ?? "")));
      list.append(li);
    }
    this.node.append(section("Files created", list));
  }

  /** @param {ToolResult} result a text editor's: what it viewed, created or replaced */
  editorResult(result) {
    const command = stringOr(this.input.command) ?? "";
    const path = stringOr(this.input.path);
    const verb = Object.hasOwn(EDITED, command) ? EDITED[command] : SUMMARIES[this.name][1];
    this.label.textContent = verb;
    if (path !== null) this.label.append(" ", element("code", "tool-name", path));
    const answer = result.result ?? {};
    if (answer.type === "view") {
      const note = answer.truncated === true ? " (cut short)" : "";
      this.node.append(section(`Content${note}`, output(stringOr(answer.content) ?? "")));
    } else if (answer.type === "create") {
      this.node.append(section("Result", element("div", "tool-output", answer.is_file_update === true ? "File updated" : "File created")));
    } else if (answer.type === "str_replace") {
      const lines = Array.isArray(answer.lines) ? answer.lines.map(String) : [];
      this.node.append(section("Result", output(lines.join("\n"))));
    }
  }

  /** The reply ended before the run had a result. */
  end() {
    if (this.node.dataset.state !== "running") return;
    this.node.dataset.state = "stopped";
    this.label.textContent = "No result";
  }
}
