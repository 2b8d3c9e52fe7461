// @ts-check
// The one DOM helper the page's views share.

/**
 * A new element with its class, and its text when given (set as text, never as HTML).
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
