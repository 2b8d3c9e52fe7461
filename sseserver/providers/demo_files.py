"""The demo's answer to a message with images or documents: it names what it received
(the kind, the media type, the size in bytes, a text document's first words) and cites
each document as Claude would with citations on, so attachments show end to end offline
(docs/protocol.md, "Attachments").

A text document is cited by `char_location` (its first sentence, at most 80 characters),
a PDF by `page_location` (page 1, quoting the first `(...) Tj` string of its first
kilobytes, which is how text a PDF shows is written), a URL document by `page_location`
with no quote: the demo fetches nothing.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from typing import Any, Final

from .base import Block, Event, GenerationRequest, Item, Usage

_TOKEN: Final = re.compile(r"\s*\S+|\s+$")
_PDF_TEXT: Final = re.compile(rb"\(((?:[^()\\]|\\.){1,200})\)\s*Tj")
# Base64 characters of a PDF read for the quote: the first 48 KiB.
_PDF_HEAD_CHARS: Final = 64 * 1024
_FIRST_WORDS: Final = 8


def demo_file_items(request: GenerationRequest) -> Iterator[Item] | None:
    """The items of the demo's answer to the last message's attachments, or None when it
    has none. A document is cited when it was sent with citations on."""
    last = request.messages[-1].content
    files = [b for b in last if b.get("type") in ("image", "document")] \
        if not isinstance(last, str) else []
    if not files:
        return None
    earlier = sum(1 for m in request.messages[:-1] if not isinstance(m.content, str)
                  for b in m.content if b.get("type") == "document")
    return _answer(request, files, earlier)


def _answer(request: GenerationRequest, files: list[Block], earlier: int) -> Iterator[Item]:
    written = 0
    lines = [f"You sent {len(files)} attachment{'s' if len(files) > 1 else ''}.\n"]
    documents = earlier
    for number, block in enumerate(files, 1):
        lines.append(f"{number}. {describe(block)}\n")
        for token in _TOKEN.findall("".join(lines)):
            written += 1
            yield token
        lines.clear()
        if block["type"] == "document":
            if (block.get("citations") or {}).get("enabled"):
                yield Event("citation", cite(block, documents))
            documents += 1
    words = sum(len(m.text.split()) for m in request.messages)
    yield Usage(words, written, "end_turn")


def describe(block: Block) -> str:
    """One attachment in words: kind, media type, size, and a text's first words."""
    source = block["source"]
    what = "A document" if block["type"] == "document" else "An image"
    if block.get("title"):
        what += f" titled \u201c{block['title']}\u201d"
    if source["type"] == "url":
        return f"{what} at {source['url']} (not fetched)."
    if source["type"] == "text":
        text = source["data"]
        first = " ".join(text.split()[:_FIRST_WORDS])
        size = len(text.encode("utf-8", "surrogatepass"))
        return f"{what}, text/plain, {size} bytes, beginning: \u201c{first}\u201d."
    data = source["data"]
    size = len(data) // 4 * 3 - data[-2:].count("=")
    return f"{what}, {source['media_type']}, {size} bytes."


def cite(block: Block, index: int) -> dict[str, Any]:
    """The citation event of document `index` (docs/protocol.md, "Events")."""
    source = block["source"]
    title = block.get("title")
    if source["type"] == "text":
        text = source["data"]
        end = min(len(text), 80)
        stop = text.find(".", 0, end)
        end = stop + 1 if stop >= 0 else end
        return {"url": None, "title": title, "cited_text": text[:end], "type": "char_location",
                "document_index": index, "start_char_index": 0, "end_char_index": end}
    quote = ""
    if source["type"] == "base64":
        head = source["data"][:_PDF_HEAD_CHARS]
        found = _PDF_TEXT.search(binascii.a2b_base64(head[: len(head) // 4 * 4]))
        quote = found.group(1).decode("latin-1") if found else ""
    return {"url": None, "title": title, "cited_text": quote, "type": "page_location",
            "document_index": index, "start_page_number": 1, "end_page_number": 2}
