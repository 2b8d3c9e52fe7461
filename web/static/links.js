// @ts-check
// Links to the web pages a reply names (search results, fetched pages, cited sources):
// http(s) only, opened in a new tab without a referrer, labelled by their domain.

import { isSafeUrl } from "./markdown.js";

/**
 * "example.com" for a URL, without a leading "www."; "" when it is not a URL.
 * @param {string | null | undefined} url
 */
export function domainOf(url) {
  try {
    return new URL(url ?? "").hostname.replace(/^www\./, "");
  } catch {
    return "";
  }
}

/**
 * A link that opens in a new tab without a referrer, or plain text when `url` is not
 * http(s).
 * @param {string | null | undefined} url
 * @param {string} label
 */
export function link(url, label) {
  if (!isSafeUrl(url)) {
    const span = document.createElement("span");
    span.textContent = label;
    return span;
  }
  const a = document.createElement("a");
  a.href = /** @type {string} */ (url);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.textContent = label;
  return a;
}
