"""Images and documents in a user message, checked as the Messages API would check them,
and before it sees them (docs/protocol.md, "Attachments").

An image's source is `base64` (JPEG, PNG, GIF or WebP) or an `https` URL; a document's is
`base64` PDF, `text` (plain text, the text itself in `data`) or an `https` URL of a PDF.
The base64 must decode, and its first bytes must be the declared type's own signature:
a GIF sent as `image/png` is refused here rather than by the API after the stream began.
A URL is passed on, never fetched by this server. Each file is at most
--max-attachment-bytes once decoded, and a request holds at most `MAX_ATTACHMENTS`.

The base64 is checked without decoding it whole: its alphabet and padding say that it
decodes, its length gives the decoded size, and only its first characters are decoded for
the signature. A large body is checked in a worker process (uploads.py).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import BadRequest, TooLarge
from .providers.base import Block, GenerationRequest

# The API's own bound on images in one request; documents count with them here.
MAX_ATTACHMENTS: Final = 100
MAX_URL_CHARS: Final = 2048
MAX_TITLE_CHARS: Final = 500
IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
DOCUMENT_TYPES: Final = ("application/pdf", "text/plain")
_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Enough base64 characters for every signature below (12 bytes).
_HEAD_CHARS: Final = 16


def _webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


# Each media type's file signature, on the file's first bytes.
_SIGNATURES: Final[dict[str, Callable[[bytes], bool]]] = {
    "image/jpeg": lambda head: head.startswith(b"\xff\xd8\xff"),
    "image/png": lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda head: head.startswith((b"GIF87a", b"GIF89a")),
    "image/webp": _webp,
    "application/pdf": lambda head: head.startswith(b"%PDF-"),
}


class Attachments:
    """The checks of one request's images and documents, and their count so far."""

    __slots__ = ("citations", "count", "max_bytes")

    def __init__(self, max_bytes: int, citations: bool) -> None:
        self.max_bytes = max_bytes
        self.citations = citations
        self.count = 0

    def image(self, block: Block, at: str) -> Block:
        """An image block (its keys already checked), as it goes to the API."""
        self._add(at)
        source = block["source"]
        if _source_kind(source, at, ("base64", "url")) == "url":
            _url(source, f"{at}.source")
        else:
            _base64(source, f"{at}.source", IMAGE_TYPES, self.max_bytes, "image")
        return block

    def document(self, block: Block, at: str) -> Block:
        """A document block (its keys already checked), as it goes to the API: with
        citations on or off as the operator set them, never as the client did."""
        self._add(at)
        for key in ("title", "context"):
            value = block.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{at}.{key} must be a string.")
        if len(block.get("title") or "") > MAX_TITLE_CHARS:
            raise TooLarge(f"{at}.title is longer than {MAX_TITLE_CHARS} characters.")
        source = block["source"]
        kind = _source_kind(source, at, ("base64", "text", "url"))
        where = f"{at}.source"
        if kind == "url":
            _url(source, where)
        elif kind == "base64":
            _base64(source, where, ("application/pdf",), self.max_bytes, "document")
        else:
            _text_source(source, where, self.max_bytes)
        return {**block, "citations": {"enabled": self.citations}}

    def result_image(self, part: Block, at: str) -> None:
        """An image in a tool_result's content: base64 only, as a handler returns it."""
        self._add(at)
        source = part["source"]
        _source_kind(source, at, ("base64",))
        _base64(source, f"{at}.source", IMAGE_TYPES, self.max_bytes, "image")

    def _add(self, at: str) -> None:
        self.count += 1
        if self.count > MAX_ATTACHMENTS:
            raise TooLarge(f"{at}: a request may hold at most {MAX_ATTACHMENTS} images and "
                           "documents.")


def base64_size(data: str) -> int | None:
    """The decoded size of strict base64 (the standard alphabet, padded, no line breaks
    or spaces), or None when it would not decode."""
    if len(data) % 4:
        return None
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    try:
        raw = data[: len(data) - pad].encode("ascii")
    except UnicodeEncodeError:
        return None
    if raw.translate(None, _ALPHABET):
        return None
    return len(data) // 4 * 3 - pad


def head_bytes(data: str) -> bytes:
    """The first bytes of base64 that `base64_size` accepted."""
    return binascii.a2b_base64(data[:_HEAD_CHARS])


def attachment_count(request: GenerationRequest) -> int:
    """The images and documents a request holds, those of tool results included."""
    count = 0
    for message in request.messages:
        for block in () if isinstance(message.content, str) else message.content:
            kind = block.get("type")
            if kind in ("image", "document"):
                count += 1
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                count += sum(part.get("type") == "image" for part in block["content"])
    return count


def _source_kind(source: object, at: str, kinds: tuple[str, ...]) -> str:
    if not isinstance(source, dict) or source.get("type") not in kinds:
        allowed = ", ".join(kinds)
        raise BadRequest(f"{at}.source must be an object whose type is one of: {allowed}.")
    return str(source["type"])


def _text_source(source: dict[str, Any], at: str, max_bytes: int) -> None:
    _keys(source, at, {"type", "media_type", "data"})
    if source["media_type"] != "text/plain":
        raise BadRequest(f"{at}.media_type must be 'text/plain' for a text source.")
    if not isinstance(source["data"], str) or not source["data"].strip():
        raise BadRequest(f"{at}.data must be the document's text, not empty.")
    size = len(source["data"].encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise TooLarge(f"{at}: the document is {size} bytes; at most {max_bytes} are "
                       "accepted.")


def _keys(source: dict[str, Any], at: str, keys: set[str]) -> None:
    if set(source) != keys:
        raise BadRequest(f"{at} must have exactly: {', '.join(sorted(keys))}.")


def _url(source: dict[str, Any], at: str) -> None:
    """An https URL, passed on as it is: the API fetches it, this server never does."""
    _keys(source, at, {"type", "url"})
    url = source["url"]
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not url.isascii() or any(
        c <= " " or c == "\x7f" for c in url
    ):
        raise BadRequest(f"{at}.url must be an https URL of at most {MAX_URL_CHARS} "
                         "characters, without spaces.")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise BadRequest(f"{at}.url must be an https URL.")


def _base64(source: dict[str, Any], at: str, types: tuple[str, ...], max_bytes: int,
            what: str) -> None:
    _keys(source, at, {"type", "media_type", "data"})
    media_type = source["media_type"]
    if media_type not in types:
        raise BadRequest(f"{at}.media_type must be one of: {', '.join(types)}.")
    data = source["data"]
    size = base64_size(data) if isinstance(data, str) else None
    if size is None or size == 0:
        raise BadRequest(f"{at}.data must be base64 (standard alphabet, padded, no line "
                         "breaks) of a file.")
    if size > max_bytes:
        raise TooLarge(f"{at}: the {what} is {size} bytes; at most {max_bytes} are "
                       "accepted.")
    if not _SIGNATURES[media_type](head_bytes(data)):
        raise BadRequest(f"{at}.data is not {media_type}: its first bytes are not that "
                         "type's signature.")
