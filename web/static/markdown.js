// @ts-check
// Markdown to DOM, safely. marked turns the model's Markdown into HTML with raw HTML
// switched off (escaped as text) and only http(s) links; DOMPurify then keeps an
// allowlist of the elements Markdown produces, whatever marked emits. Neither library
// evaluates code or writes style attributes, so the page's CSP (script-src 'self',
// style-src 'self') holds unchanged (web/static/vendor/README.md).

import DOMPurify from "./vendor/purify.es.mjs";
import { Marked } from "./vendor/marked.esm.js";

/** @typedef {import("./vendor/marked.esm.js").Token} Token */
/** @typedef {import("./vendor/marked.esm.js").Tokens.Generic} GenericToken */

/**
 * Citation markers travel inside the Markdown source as CITE_OPEN digits CITE_CLOSE:
 * two private-use characters, removed from the model's own text (cleanText), so only a
 * `citation` event can make one.
 */
export const CITE_OPEN = "\uE000";
export const CITE_CLOSE = "\uE001";
const SENTINELS = /[\uE000\uE001]/g;
const CITE_MARK = /\uE000\d+\uE001/g;

const SAFE_URL = /^https?:\/\//i;

/** @param {string} text */
export function escapeHtml(text) {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Whether `url` may be a link target: absolute http(s) only. */
export function isSafeUrl(/** @type {unknown} */ url) {
  return typeof url === "string" && SAFE_URL.test(url);
}

/** The model's text with the citation sentinels removed (they are ours alone). */
export function cleanText(/** @type {string} */ text) {
  return text.replace(SENTINELS, "");
}

/** @type {import("./vendor/marked.esm.js").TokenizerAndRendererExtension} */
const citeExtension = {
  name: "cite",
  level: "inline",
  start(src) {
    const at = src.indexOf(CITE_OPEN);
    return at < 0 ? undefined : at;
  },
  tokenizer(src) {
    const match = /^\uE000(\d+)\uE001/.exec(src);
    return match ? { type: "cite", raw: match[0], n: Number(match[1]) } : undefined;
  },
  renderer(token) {
    // Linked to its source by linkCitations(), with DOM calls, after sanitizing.
    return `<sup class="cite" data-cite="${Number(token.n)}">${Number(token.n)}</sup>`;
  },
};

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  extensions: [citeExtension],
  renderer: {
    // Raw HTML from the model is shown as the text it is, never parsed.
    html(token) {
      const text = escapeHtml(token.text);
      return "block" in token && token.block ? `<p>${text}</p>\n` : text;
    },
    link(token) {
      const label = this.parser.parseInline(token.tokens);
      if (!isSafeUrl(token.href)) return label;
      const title = token.title ? ` title="${escapeHtml(token.title)}"` : "";
      return `<a href="${escapeHtml(token.href)}"${title}>${label}</a>`;
    },
    // Images are not loaded (a tracking pixel, and img-src is 'self'): shown as a link.
    image(token) {
      const label = escapeHtml(token.text || token.href);
      if (!isSafeUrl(token.href)) return label;
      return `<a href="${escapeHtml(token.href)}" class="image-link">${label}</a>`;
    },
    code(token) {
      const text = token.text.replace(CITE_MARK, "");
      const lang = (token.lang ?? "").match(/^\S*/)?.[0] ?? "";
      const cls = lang ? ` class="language-${escapeHtml(lang)}"` : "";
      return `<pre><code${cls}>${escapeHtml(text)}\n</code></pre>\n`;
    },
    codespan(token) {
      return `<code>${escapeHtml(token.text.replace(CITE_MARK, ""))}</code>`;
    },
  },
});

// What Markdown produces, and nothing else: no forms, media, frames, styles or SVG.
const ALLOWED_TAGS = [
  "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
  "pre", "code", "em", "strong", "del", "a", "table", "thead", "tbody", "tr", "th", "td",
  "input", "sup",
];
const ALLOWED_ATTR = [
  "href", "title", "align", "start", "type", "checked", "disabled", "class", "data-cite",
];

const purify = DOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node instanceof HTMLAnchorElement) {
    if (SAFE_URL.test(node.getAttribute("href") ?? "")) {
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    } else {
      node.removeAttribute("href");
    }
  } else if (node instanceof HTMLInputElement) {
    // A task list's checkbox: shown, never editable.
    node.type = "checkbox";
    node.disabled = true;
  }
});

/**
 * Sanitize marked's HTML into a fragment of this document.
 * @param {string} html
 * @returns {DocumentFragment}
 */
function sanitize(html) {
  return purify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    // DOMPurify's own URI check stays (it also vets non-URL attributes such as align);
    // the hook above narrows links to http(s).
    RETURN_DOM_FRAGMENT: true,
  });
}

/** @param {string} source */
function lex(source) {
  return marked.lexer(source);
}

/** @param {Token[]} tokens */
function toHtml(tokens) {
  return marked.parser(tokens);
}

/**
 * Markdown source to sanitized DOM, with code blocks given their Copy button and
 * citation markers linked.
 * @param {string} html from toHtml
 * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
 */
function build(html, source) {
  const fragment = sanitize(html);
  for (const pre of fragment.querySelectorAll("pre")) decorateCode(pre);
  for (const sup of fragment.querySelectorAll("sup.cite")) linkCitation(sup, source);
  return fragment;
}

/** @param {HTMLPreElement} pre */
function decorateCode(pre) {
  const block = document.createElement("div");
  block.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const lang = document.createElement("span");
  lang.className = "code-lang";
  const code = pre.querySelector("code");
  lang.textContent = code?.className.match(/(?:^| )language-(\S+)/)?.[1] ?? "";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code ghost";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", lang.textContent ? `Copy ${lang.textContent} code` : "Copy code");
  head.append(lang, copy);
  pre.replaceWith(block);
  block.append(head, pre);
}

/**
 * @param {Element} sup
 * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
 */
function linkCitation(sup, source) {
  const n = Number(sup.getAttribute("data-cite"));
  const cited = source(n);
  sup.textContent = "";
  const label = `[${n}]`;
  if (cited && isSafeUrl(cited.url)) {
    const a = document.createElement("a");
    a.href = /** @type {string} */ (cited.url);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = label;
    a.title = cited.title ?? a.hostname;
    sup.append(a);
  } else {
    sup.textContent = label;
    if (cited?.title) sup.setAttribute("title", cited.title);
  }
}

/**
 * The code inside a Copy button's block: exactly the fence's content, without the final
 * newline the renderer adds.
 * @param {Element} button
 */
export function codeOf(button) {
  const code = button.closest(".code-block")?.querySelector("pre code");
  return (code?.textContent ?? "").replace(/\n$/, "");
}

/** Blocks kept live at the end of a streaming text (see MarkdownView.render). */
const LIVE_BLOCKS = 2;
/**
 * Final blocks are grouped this many to a chunk, each chunk an element with
 * `content-visibility: auto`: the browser skips the layout and paint of chunks out of
 * view, and a frame's layout walks a few chunks rather than every block of a long reply.
 */
const CHUNK_NODES = 48;

/**
 * One streamed Markdown text, rendered at most once per animation frame, and only its
 * end: the source is lexed into blocks; blocks followed by LIVE_BLOCKS others are final,
 * rendered once and kept, and only the remaining tail is lexed and rendered again on
 * each frame. That keeps the cost of a frame proportional to the last blocks, not to the
 * whole reply. A final full render at finish() corrects the rare case where a later line
 * changes an earlier block (a reference definition, a list marker that only becomes one
 * with its next character).
 */
export class MarkdownView {
  /**
   * @param {HTMLElement} root the element that receives the rendered blocks
   * @param {(n: number) => {url: string | null, title: string | null} | undefined} source
   *   the citation numbered n
   * @param {() => void} [onRender] after each render (to follow the text down)
   */
  constructor(root, source, onRender) {
    this.root = root;
    this.sourceOf = source;
    this.onRender = onRender ?? (() => {});
    this.source = "";
    /** Characters of `source` rendered into final blocks. */
    this.finalLength = 0;
    /** @type {string[]} HTML of the final blocks, for the check at finish() */
    this.finalHtml = [];
    this.liveHtml = "";
    /** @type {ChildNode[]} */
    this.liveNodes = [];
    /** @type {HTMLElement | null} the chunk final blocks go into */
    this.chunk = null;
    this.frame = 0;
    this.pendingCr = false;
  }

  /** Append model text (sentinels removed, line endings normalised as marked would). */
  append(/** @type {string} */ text) {
    let clean = cleanText(text);
    if (this.pendingCr && clean.startsWith("\n")) clean = clean.slice(1);
    this.pendingCr = clean.endsWith("\r");
    // marked turns \r\n and \r into \n itself; doing it here keeps lengths aligned.
    this.source += clean.replace(/\r\n?/g, "\n");
    this.schedule();
  }

  /**
   * Put citation number n at the end of the text, before its trailing white space so
   * it stays on the sentence it supports.
   * @param {number} n
   */
  cite(n) {
    const mark = `${CITE_OPEN}${n}${CITE_CLOSE}`;
    const trimmed = this.source.trimEnd();
    const at = Math.max(trimmed.length, this.finalLength);
    this.source = this.source.slice(0, at) + mark + this.source.slice(at);
    this.schedule();
  }

  get empty() {
    return this.source.trim() === "";
  }

  schedule() {
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  /** Render what has arrived now (called once per frame by schedule). */
  render() {
    if (this.frame !== 0) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    const tokens = lex(this.source.slice(this.finalLength));
    let cut = tokens.length;
    for (let live = 0; cut > 0 && live < LIVE_BLOCKS;) {
      cut -= 1;
      if (tokens[cut].type !== "space") live += 1;
    }
    if (cut > 0) {
      const finished = tokens.slice(0, cut);
      const html = toHtml(finished);
      this.appendFinal(build(html, this.sourceOf));
      this.finalHtml.push(html);
      for (const token of finished) this.finalLength += token.raw.length;
    }
    const liveHtml = toHtml(tokens.slice(cut));
    if (liveHtml !== this.liveHtml || cut > 0) {
      this.replaceLive(liveHtml);
    }
    this.onRender();
  }

  /**
   * Put final blocks after those before them, in chunks of CHUNK_NODES.
   * @param {DocumentFragment} fragment
   */
  appendFinal(fragment) {
    for (const node of [...fragment.childNodes]) {
      if (node instanceof Text && node.data.trim() === "") continue; // between blocks
      if (!this.chunk || this.chunk.childNodes.length >= CHUNK_NODES) {
        this.chunk = document.createElement("div");
        this.chunk.className = "md-chunk";
        this.root.insertBefore(this.chunk, this.liveNodes[0] ?? null);
      }
      this.chunk.append(node);
    }
  }

  /** @param {string} html */
  replaceLive(html) {
    for (const node of this.liveNodes) node.remove();
    const fragment = build(html, this.sourceOf);
    this.liveNodes = [...fragment.childNodes];
    this.root.append(fragment);
    this.liveHtml = html;
  }

  /**
   * The text is complete: make sure what is shown is what a full render gives. A text
   * never rendered yet (one restored from storage) gets that full render only.
   */
  finish() {
    const fresh = this.finalLength === 0 && this.liveNodes.length === 0;
    if (!fresh) this.render();
    if (this.frame !== 0) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    const full = toHtml(lex(this.source));
    if (fresh || full !== this.finalHtml.join("") + this.liveHtml) {
      this.root.replaceChildren();
      this.chunk = null;
      this.liveNodes = [];
      this.liveHtml = "";
      this.appendFinal(build(full, this.sourceOf));
      this.finalHtml = [full];
      this.finalLength = this.source.length;
      this.onRender();
    }
  }
}
