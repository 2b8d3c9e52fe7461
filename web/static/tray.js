// @ts-check
// The composer's attachments: files come from the Attach button (a real file input), a
// paste of an image, or a drop anywhere on the page; each is checked and read
// (attachments.js), shown as a chip with a Remove button, and its bytes kept
// (filestore.js) before the question is sent. A refused file is named in the tray's
// message with the reason, and nothing of it is read or sent.

import { acceptOf, fileChip, readFile, Refusal, showFile } from "./attachments.js";

/** @typedef {import("./attachments.js").FileRef} FileRef */
/** @typedef {import("./attachments.js").Limits} Limits */
/** @typedef {import("./filestore.js").FileStore} FileStore */

/**
 * @typedef {object} TrayParts
 * @property {HTMLButtonElement} button  the Attach button
 * @property {HTMLInputElement} input    its file input
 * @property {HTMLElement} list          the chips
 * @property {HTMLElement} message       where a refusal or a warning is said
 * @property {HTMLElement} composer      paste target, and what a drag highlights
 */

export class AttachmentTray {
  /**
   * @param {TrayParts} parts
   * @param {FileStore} files
   * @param {() => FileRef[]} sent the files the next request sends besides the tray's
   * @param {(hash: string) => boolean} shown whether a question on the page holds a file
   */
  constructor(parts, files, sent, shown) {
    this.parts = parts;
    this.files = files;
    this.sent = sent;
    this.shown = shown;
    /** @type {Limits | null} null until the server says it takes attachments */
    this.limits = null;
    /** @type {FileRef[]} */
    this.refs = [];
    /** Files being read, so that Send waits for them. */
    this.reading = Promise.resolve();
    /** How many drags are over the page (dragenter and dragleave nest). */
    this.dragDepth = 0;

    parts.button.addEventListener("click", () => parts.input.click());
    parts.input.addEventListener("change", () => {
      const chosen = [...(parts.input.files ?? [])];
      parts.input.value = ""; // the same file may be chosen again after a removal
      this.add(chosen);
    });
    parts.composer.addEventListener("paste", (event) => {
      const data = event.clipboardData;
      const pasted = [...(data?.files ?? [])];
      if (pasted.length === 0 || !this.limits) return;
      // Text pasted with a picture (from a web page, say) still goes into the box.
      if (!data?.types.includes("text/plain")) event.preventDefault();
      this.add(pasted);
    });
    document.addEventListener("dragover", (event) => {
      if (!this.limits || !carriesFiles(event)) return;
      event.preventDefault(); // else the browser would open the file in place of the page
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("dragenter", (event) => {
      if (!this.limits || !carriesFiles(event)) return;
      this.dragDepth += 1;
      parts.composer.classList.add("dropping");
    });
    document.addEventListener("dragleave", (event) => {
      if (!carriesFiles(event)) return;
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (this.dragDepth === 0) parts.composer.classList.remove("dropping");
    });
    document.addEventListener("drop", (event) => {
      this.dragDepth = 0;
      parts.composer.classList.remove("dropping");
      if (!this.limits || !carriesFiles(event)) return;
      event.preventDefault();
      this.add([...(event.dataTransfer?.files ?? [])]);
    });
  }

  /**
   * The server's limits: the Attach button shows when there are some.
   * @param {Limits | null} limits
   */
  setLimits(limits) {
    this.limits = limits;
    this.parts.button.hidden = limits === null;
    if (limits) this.parts.input.accept = acceptOf(limits);
  }

  /**
   * Check, read and show files, one after the other; refusals are said together.
   * @param {File[]} chosen
   */
  add(chosen) {
    const limits = this.limits;
    if (!limits || chosen.length === 0) return;
    this.say("");
    this.reading = this.reading.then(async () => {
      /** @type {string[]} */
      const refused = [];
      for (const file of chosen) {
        try {
          const { ref, bytes } = await readFile(file, limits, [...this.sent(), ...this.refs]);
          if (this.refs.some((known) => known.hash === ref.hash)) continue; // attached already
          void this.files.keep(ref.hash, bytes);
          this.refs.push(ref);
          this.show(ref);
        } catch (error) {
          refused.push(error instanceof Refusal ? error.message : `${file.name} could not be read.`);
        }
      }
      if (refused.length > 0) this.say(refused.join(" "));
    });
  }

  /** @param {FileRef} ref */
  show(ref) {
    const chip = fileChip(ref);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attachment-remove ghost";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${ref.name}`);
    remove.addEventListener("click", () => this.remove(ref, chip));
    chip.append(remove);
    this.parts.list.append(chip);
    this.parts.list.hidden = false;
    void showFile(chip, ref, this.files);
  }

  /**
   * @param {FileRef} ref
   * @param {HTMLElement} chip
   */
  remove(ref, chip) {
    this.refs = this.refs.filter((known) => known !== ref);
    chip.remove();
    this.parts.list.hidden = this.refs.length === 0;
    this.say("");
    // Its bytes go, unless a question on the page holds the same file (Retry sends it).
    if (!this.shown(ref.hash)) void this.files.forget([ref.hash]);
    this.parts.button.focus();
  }

  /** The files to send with the question, once every file chosen has been read. */
  async ready() {
    await this.reading;
    await this.files.settled(this.refs.map((ref) => ref.hash));
    return [...this.refs];
  }

  /** Empty the tray: its files were sent. What it said stays (it may be about them). */
  clear() {
    this.refs = [];
    this.parts.list.replaceChildren();
    this.parts.list.hidden = true;
  }

  /**
   * Say something about the attachments (a refusal; files no longer stored); "" hides it.
   * @param {string} text
   */
  say(text) {
    this.parts.message.textContent = text;
    this.parts.message.hidden = text === "";
  }
}

/** @param {DragEvent} event */
function carriesFiles(event) {
  return event.dataTransfer?.types.includes("Files") ?? false;
}
