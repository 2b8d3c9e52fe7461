// @ts-check
// The composer's Options panel (docs/protocol.md, "Requests"): what the server allows is
// read from /healthz `capabilities` and only that is shown; a toggle starts as the
// server's own default. The panel gives each request its options: model, system prompt,
// max tokens, thinking, web search, web fetch, code execution, tool search, and an
// effort level when the chosen model lists some.

import { find } from "./view.js";

/** @typedef {import("./api.js").Capabilities} Capabilities */
/** @typedef {import("./api.js").StreamRequest} StreamRequest */
/** @typedef {Omit<StreamRequest, "messages">} Options */

/** The server's toggles: their request field, element ids, and whether they start on. */
const TOGGLES = /** @type {const} */ ([
  { field: "web_search", id: "web-search", on: false },
  { field: "web_fetch", id: "web-fetch", on: false },
  { field: "code_execution", id: "code-execution", on: false },
  { field: "tool_search", id: "tool-search", on: false },
]);
/** How the effort levels read in the selector. */
const EFFORT_LABELS = /** @type {Record<string, string>} */ ({
  low: "Low", medium: "Medium", high: "High", xhigh: "Extra high", max: "Max",
});

/**
 * Whether an option is hidden (the server does not allow it), itself or in a hidden parent.
 * @param {HTMLElement} element
 */
function isHidden(element) {
  return element.closest("[hidden]") !== null;
}

export class OptionsPanel {
  /**
   * @param {HTMLElement} root the page
   * @param {number | null} maxTokens the server's default and bound for max_tokens
   */
  constructor(root, maxTokens) {
    this.root = root;
    this.maxTokens = maxTokens;
    this.modelPicker = root.querySelector("#model");
    this.modelName = root.querySelector("#model-name");
    this.system = find(root, "#system", HTMLTextAreaElement);
    this.maxTokensInput = find(root, "#max-tokens", HTMLInputElement);
    this.thinking = find(root, "#thinking", HTMLInputElement);
    this.effort = find(root, "#effort", HTMLSelectElement);
    /** @type {Capabilities | null} */
    this.capabilities = null;
    this.modelPicker?.addEventListener("change", () => this.showModel());
  }

  /** The model the next request asks for. */
  get model() {
    if (this.modelPicker instanceof HTMLSelectElement) return this.modelPicker.value;
    return this.modelName?.textContent?.trim() ?? "";
  }

  /**
   * Show what the server allows, set as its defaults: thinking on where it is allowed,
   * web search, web fetch, code execution and tool search off.
   * @param {Capabilities | null} capabilities
   */
  show(capabilities) {
    this.capabilities = capabilities;
    find(this.root, "#thinking-option", HTMLElement).hidden = !capabilities?.thinking;
    this.thinking.checked = Boolean(capabilities?.thinking);
    for (const toggle of TOGGLES) this.input(toggle.id).checked = toggle.on;
    this.hideForbidden();
    this.showModel();
  }

  /**
   * The models offered whose capabilities the server does not know yet (it reads them in
   * the background once it starts).
   * @returns {string[]}
   */
  unknownModels() {
    const offered = this.modelPicker instanceof HTMLSelectElement
      ? [...this.modelPicker.options].map((option) => option.value)
      : [this.model];
    const known = this.capabilities?.models ?? {};
    return offered.filter((model) => model !== "" && !(model in known));
  }

  /**
   * Take the models' capabilities read later, keeping every choice made meanwhile.
   * @param {Capabilities["models"]} models
   */
  setModels(models) {
    if (!this.capabilities) return;
    this.capabilities = { ...this.capabilities, models };
    this.showModel();
  }

  /** @param {string} id */
  input(id) {
    return find(this.root, `#${id}`, HTMLInputElement);
  }

  /**
   * Show the toggles the server and the chosen model allow, and the model's effort
   * levels (none: no selector, the server's default).
   */
  showModel() {
    const allowed = this.capabilities;
    const model = allowed?.models?.[this.model];
    for (const toggle of TOGGLES) {
      const lacks = toggle.field === "web_fetch" || toggle.field === "code_execution" ? model?.[toggle.field] === false : false;
      find(this.root, `#${toggle.id}-option`, HTMLElement).hidden = !allowed?.[toggle.field] || lacks;
    }
    const levels = Array.isArray(model?.effort) ? model.effort.map(String) : [];
    const chosen = this.effort.value;
    this.effort.replaceChildren(new Option("Default", ""));
    for (const level of levels) this.effort.append(new Option(EFFORT_LABELS[level] ?? level, level));
    this.effort.value = levels.includes(chosen) ? chosen : "";
    find(this.root, "#effort-option", HTMLElement).hidden = levels.length === 0;
  }

  /**
   * Hide every option whose capability the server reports as false (`data-capability`
   * names it); an absent capability is allowed.
   */
  hideForbidden() {
    /** @type {Record<string, unknown>} */
    const allowed = this.capabilities ? { ...this.capabilities } : {};
    for (const option of this.root.querySelectorAll("[data-capability]")) {
      const name = option instanceof HTMLElement ? option.dataset.capability : undefined;
      if (name && allowed[name] === false && option instanceof HTMLElement) option.hidden = true;
    }
  }

  /**
   * The request's options, without its messages, or null when an option is invalid (the
   * panel opens and the browser says why). A server's toggle is sent only when the server
   * reports it, "on" only when it is shown and checked.
   * @returns {Options | null}
   */
  read() {
    /** @type {Options} */
    const request = {};
    if (this.modelPicker instanceof HTMLSelectElement) request.model = this.modelPicker.value;
    const system = this.system.value.trim();
    if (system && !isHidden(this.system)) request.system = system;
    const max = this.maxTokensInput;
    if (max.value !== "" && max.value !== String(this.maxTokens)) {
      if (!max.checkValidity()) {
        const panel = max.closest("details");
        if (panel) panel.open = true;
        max.reportValidity();
        return null;
      }
      request.max_tokens = Number(max.value);
    }
    const allowed = this.capabilities;
    if (allowed?.thinking) request.thinking = this.thinking.checked ? "adaptive" : "off";
    for (const toggle of TOGGLES) {
      const input = this.input(toggle.id);
      if (allowed?.[toggle.field]) request[toggle.field] = input.checked && !isHidden(input) ? "on" : "off";
    }
    if (this.effort.value !== "" && !isHidden(this.effort)) {
      request.effort = /** @type {StreamRequest["effort"]} */ (this.effort.value);
    }
    return request;
  }
}
