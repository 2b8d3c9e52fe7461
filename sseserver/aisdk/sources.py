"""What a reply cites, as the AI SDK's sources (docs/protocol.md, "The AI SDK's chat
route"): a `source-url` once per web page, a `source-document` once per attached document,
and the citations of the open text part, which its `text-end` carries.

Only http(s) URLs become sources: the page links only those, and another client may link
whatever it gets without looking (a `javascript:` or `data:` URL)."""

from __future__ import annotations

from typing import Any, Final, TypeGuard

from .encoding import chunk

# A document citation's type says what the document was: a PDF is cited by page, a text
# document by character, a document of content blocks by block (as text).
DOCUMENT_TYPES: Final = {
    "page_location": "application/pdf",
    "char_location": "text/plain",
    "content_block_location": "text/plain",
}


def is_web_url(url: object) -> TypeGuard[str]:
    """An http(s) URL: what a client may put in a link (no `javascript:` or `data:`)."""
    return isinstance(url, str) and url[:8].lower().startswith(("http://", "https://"))


class Sources:
    """The sources one response has given, and the citations of its open text part."""

    __slots__ = ("_given", "pending")

    def __init__(self) -> None:
        self._given: set[str] = set()  # source ids given a part
        self.pending: list[dict[str, Any]] = []  # the open text part's citations

    def take(self) -> list[dict[str, Any]]:
        """The open text part's citations, for its `text-end`; none are left."""
        taken, self.pending = self.pending, []
        return taken

    def page(self, url: object, title: object, out: list[bytes]) -> dict[str, Any] | None:
        """A web page's `source-url` (once per URL), and its source as a citation names
        it; None for a URL that is not http(s)."""
        if not is_web_url(url):
            return None
        source: dict[str, Any] = {"type": "source", "sourceType": "url", "id": url, "url": url}
        if title is not None:
            source["title"] = title
        if url not in self._given:
            self._given.add(url)
            part = {"type": "source-url", "sourceId": url, "url": url}
            out.append(chunk(part | ({"title": title} if title is not None else {})))
        return source

    def citation(self, data: dict[str, Any], in_text: bool, out: list[bytes]) -> None:
        """A citation of the text part just written (it arrives after that part's last
        delta); a document's becomes a source-document; one without an http(s) URL has no
        source-url form and is skipped. `in_text`: a text part is open to carry it."""
        if data.get("type") in DOCUMENT_TYPES:
            self._document(data, in_text, out)
            return
        source = self.page(data.get("url"), data.get("title"), out)
        if source is not None and in_text:
            self.pending.append({"source": source, "citedText": data.get("cited_text", "")})

    def _document(self, data: dict[str, Any], in_text: bool, out: list[bytes]) -> None:
        """A document's citation: a source-document part once per document (its id from
        the document's index, so a replay gives the same), and on the text-end the cited
        text, with its character range for a text document."""
        index = data.get("document_index")
        source_id = f"doc-{index}"
        title = data.get("title") or f"Document {index + 1 if isinstance(index, int) else ''}"
        source: dict[str, Any] = {"type": "source", "sourceType": "document", "id": source_id,
                                  "mediaType": DOCUMENT_TYPES[data["type"]],
                                  "title": str(title).strip()}
        if source_id not in self._given:
            self._given.add(source_id)
            out.append(chunk({"type": "source-document", "sourceId": source_id,
                              "mediaType": source["mediaType"], "title": source["title"]}))
        if in_text:
            cited: dict[str, Any] = {"source": source, "citedText": data.get("cited_text", "")}
            start, end = data.get("start_char_index"), data.get("end_char_index")
            if data["type"] == "char_location" and isinstance(start, int) and isinstance(
                end, int
            ):
                cited |= {"startIndex": start, "endIndex": end}
            self.pending.append(cited)
