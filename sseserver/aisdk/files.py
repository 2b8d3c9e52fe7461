"""The AI SDK's `file` parts as Claude's image and document blocks (docs/protocol.md,
"The AI SDK's chat route"), the way @ai-sdk/anthropic converts them.

A file part is `{type: "file", mediaType, url, filename?}` (`FileUIPart` in the `ai`
package's `ui/ui-messages.ts`), where `url` is a `data:` URL (what `useChat` makes of a
`FileList`) or an https URL. An image type becomes an `image` block, `application/pdf` a
`document` of base64 or URL, `text/plain` a text `document` (its data URL decoded as UTF-8);
the filename becomes a document's title. What the block then holds is checked by
attachments.py, as any request's.
"""

from __future__ import annotations

import binascii
from typing import Final
from urllib.parse import unquote_to_bytes

from ..attachments import IMAGE_TYPES
from ..errors import BadRequest
from ..providers.base import Block

TYPES: Final = (*IMAGE_TYPES, "application/pdf", "text/plain")


def file_block(part: dict[str, object], at: str) -> Block:
    """A user message's file part as the block Claude reads, or BadRequest."""
    media_type = part.get("mediaType")
    url = part.get("url")
    filename = part.get("filename")
    if media_type not in TYPES:
        raise BadRequest(f"{at}.mediaType must be one of: {', '.join(TYPES)}.")
    if not isinstance(url, str):
        raise BadRequest(f"{at}.url must be a data: URL or an https URL.")
    if filename is not None and not isinstance(filename, str):
        raise BadRequest(f"{at}.filename must be a string.")
    kind = "image" if media_type in IMAGE_TYPES else "document"
    block: Block = {"type": kind}
    if url.startswith("data:"):
        block["source"] = _data_source(url, str(media_type), at)
    elif url.startswith("https:") and media_type != "text/plain":
        block["source"] = {"type": "url", "url": url}
    else:
        raise BadRequest(f"{at}.url must be a data: URL, or an https URL of an image or a "
                         "PDF.")
    if kind == "document" and filename:
        block["title"] = filename
    return block


def _data_source(url: str, media_type: str, at: str) -> Block:
    """A data: URL's payload as a source: its base64 as it is, or plain text decoded."""
    header, comma, payload = url.partition(",")
    if not comma:
        raise BadRequest(f"{at}.url is not a data: URL (no comma).")
    base64 = header.endswith(";base64")
    if media_type != "text/plain":
        if not base64:
            raise BadRequest(f"{at}.url must hold base64 (data:{media_type};base64,...).")
        return {"type": "base64", "media_type": media_type, "data": payload}
    try:
        raw = binascii.a2b_base64(payload, strict_mode=True) if base64 else unquote_to_bytes(
            payload)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(f"{at}.url must hold UTF-8 text, as base64 or percent-encoded.") \
            from None
    return {"type": "text", "media_type": "text/plain", "data": text}
