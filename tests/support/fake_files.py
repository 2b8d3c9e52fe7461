"""The fake API's images and documents: checked as the Messages API checks them, answered
with citations as it answers a request that holds documents, and fingerprinted so a test
can prove what reached "Claude" byte for byte.

Checks (400 ``invalid_request_error``, the API's wording as near as known): a block of
each kind only in a user message (or, for images, a tool result); an image's source
``base64`` with one of the four image media types, or ``url``; a document's ``base64``
(``application/pdf``), ``text`` (``text/plain``), ``url`` or ``content``; base64 that
decodes (strictly) to a file whose first bytes are its media type's signature;
``citations``, when present, ``{"enabled": bool}``; at most 100 images in a request.

With no behaviour queued, a request that holds documents gets a text block per document,
each citing it: a text document by ``char_location`` (its first sentence, at most 80
characters), a PDF by ``page_location`` (page 1, quoting the first ``(...) Tj`` string of
its content, as text extracted from it would read), a URL document by ``page_location``
with no quote. A document sent without ``citations.enabled`` is named, not cited.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from typing import Any, Final

from .fake_blocks import Text

MAX_IMAGES: Final = 100
IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}
_PDF_TEXT: Final = re.compile(rb"\(((?:[^()\\]|\\.){1,200})\)\s*Tj")


def _blocks(message: object) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _decoded(data: object) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def _is_type(data: bytes, media_type: str) -> bool:
    if media_type == "image/webp" and data[8:12] != b"WEBP":
        return False
    return data.startswith(_SIGNATURES[media_type])


def _source_problem(source: object, at: str, kind: str) -> str | None:
    if not isinstance(source, dict):
        return f"{at}.source: Input should be a valid dictionary"
    source_type = source.get("type")
    allowed = ("base64", "url") if kind == "image" else ("base64", "text", "url", "content")
    if source_type not in allowed:
        return (f"{at}.source: Input tag '{source_type}' found using 'type' does not match "
                f"any of the expected tags: {', '.join(map(repr, allowed))}")
    where = f"{at}.source.{source_type}"
    if source_type == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url: Field required"
    if source_type == "content":
        return None
    media_type = source.get("media_type")
    types = IMAGE_TYPES if kind == "image" else (
        ("application/pdf",) if source_type == "base64" else ("text/plain",))
    if media_type not in types:
        return f"{where}.media_type: Input should be {' or '.join(map(repr, types))}"
    if source_type == "text":
        return None if isinstance(source.get("data"), str) else f"{where}.data: Field required"
    data = _decoded(source.get("data"))
    if data is None:
        return f"{where}.data: Input should be valid base64"
    if not _is_type(data, str(media_type)):
        if kind == "image":
            return f"{where}.data: Image does not match the provided media type {media_type}"
        return "The PDF specified was not valid."
    return None


def _block_problem(block: dict[str, Any], at: str, role: object) -> str | None:
    kind = block.get("type")
    if role != "user":
        return (f"{at}.type: Input tag '{kind}' found using 'type' does not match any of the "
                "expected tags for an assistant message")
    problem = _source_problem(block.get("source"), at, str(kind))
    if problem is not None or kind != "document":
        return problem
    citations = block.get("citations")
    if citations is not None and (not isinstance(citations, dict) or not isinstance(
        citations.get("enabled"), bool
    )):
        return f"{at}.citations.enabled: Input should be a valid boolean"
    for key in ("title", "context"):
        if block.get(key) is not None and not isinstance(block[key], str):
            return f"{at}.{key}: Input should be a valid string"
    return None


def validate_files(body: dict[str, Any]) -> str | None:
    """The API's 400 message for the request's images and documents, else None."""
    images = 0
    for index, message in enumerate(body["messages"]):
        role = message.get("role") if isinstance(message, dict) else None
        for number, block in enumerate(_blocks(message)):
            at = f"messages.{index}.content.{number}"
            kind = block.get("type")
            if kind in ("image", "document"):
                images += kind == "image"
                problem = _block_problem(block, at, role)
                if problem is not None:
                    return problem
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                for part, inner in enumerate(block["content"]):
                    if isinstance(inner, dict) and inner.get("type") == "image":
                        images += 1
                        problem = _source_problem(inner.get("source"),
                                                  f"{at}.content.{part}", "image")
                        if problem is not None:
                            return problem
    if images > MAX_IMAGES:
        return f"messages: A maximum of {MAX_IMAGES} images may be provided in one request."
    return None


def documents(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's document blocks, in order: a citation's `document_index` counts
    them."""
    return [b for m in body.get("messages") or () for b in _blocks(m)
            if b.get("type") == "document"]


def pdf_text(block: dict[str, Any]) -> str:
    """The first text a PDF's content shows (`(...) Tj`), which a citation quotes."""
    data = _decoded(block["source"].get("data")) or b""
    found = _PDF_TEXT.search(data)
    return found.group(1).decode("latin-1") if found else ""


def document_citation(block: dict[str, Any], index: int) -> dict[str, Any]:
    """How the API cites document `index` of a request (see the module's docstring)."""
    title = block.get("title")
    source = block["source"]
    if source["type"] == "text":
        text = source["data"]
        end = min(len(text), 80)
        stop = text.find(".", 0, end)
        end = stop + 1 if stop >= 0 else end
        return {"type": "char_location", "cited_text": text[:end], "document_index": index,
                "document_title": title, "start_char_index": 0, "end_char_index": end,
                "file_id": None}
    cited = pdf_text(block) if source["type"] == "base64" else ""
    return {"type": "page_location", "cited_text": cited, "document_index": index,
            "document_title": title, "start_page_number": 1, "end_page_number": 2,
            "file_id": None}


def cited_blocks(body: dict[str, Any]) -> tuple[Text, ...]:
    """The answer to a request that holds documents: one text block per document, citing
    it when its citations are enabled."""
    blocks = [Text(("I read ", f"{len(documents(body))} document(s).\n"))]
    for index, block in enumerate(documents(body)):
        name = block.get("title") or f"document {index + 1}"
        enabled = (block.get("citations") or {}).get("enabled") is True
        citations = (document_citation(block, index),) if enabled else ()
        blocks.append(Text(("From ", f"{name}: ", "see the cited passage.\n"), citations))
    return tuple(blocks)


def fingerprints(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, media type or source type, SHA-256) of each image and document a request
    held, of the decoded bytes (base64), the text (text) or the URL (url)."""
    found: list[tuple[str, str, str]] = []
    for message in body.get("messages") or ():
        for block in _blocks(message):
            if block.get("type") not in ("image", "document"):
                continue
            source = block["source"]
            if source["type"] == "base64":
                raw = _decoded(source["data"]) or b""
                found.append((block["type"], source["media_type"],
                              hashlib.sha256(raw).hexdigest()))
            elif source["type"] == "text":
                found.append((block["type"], "text/plain",
                              hashlib.sha256(source["data"].encode()).hexdigest()))
            else:
                found.append((block["type"], "url",
                              hashlib.sha256(source["url"].encode()).hexdigest()))
    return found
