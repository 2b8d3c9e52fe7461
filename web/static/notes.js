// @ts-check
// Small notes in a reply's body for what is neither text nor a tool (docs/protocol.md,
// "Events"): the marker where the API summarized earlier turns to make room, a file put
// in the code execution container, and content of a type the server does not know. Text
// nodes only.

import { element } from "./dom.js";

/**
 * "Earlier turns summarized", with the summary folded under it; a failed compaction (no
 * summary) says so.
 * @param {string | null} summary
 */
export function compactionMarker(summary) {
  if (summary === null) {
    return element("div", "compaction", "Earlier turns could not be summarized");
  }
  const marker = /** @type {HTMLDetailsElement} */ (element("details", "compaction"));
  marker.append(element("summary", "compaction-head", "Earlier turns summarized"),
                element("div", "compaction-text", summary));
  return marker;
}

/**
 * "File in the container: <id>" (a `container_upload` block).
 * @param {string} fileId
 */
export function fileNote(fileId) {
  const note = element("div", "container-file", "File in the container: ");
  note.append(element("code", "run-file-id", fileId));
  return note;
}

/**
 * "Unsupported content (<type>)": something Claude sent that this page cannot show.
 * @param {string} type the block's or delta's type
 */
export function unsupportedNote(type) {
  const note = element("div", "unsupported", `Unsupported content (${type})`);
  note.title = "Claude sent content of a kind this page does not show yet.";
  return note;
}
