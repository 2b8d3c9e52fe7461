"""A lean reader of the Messages API's event stream: bytes in, events out.

Why not the SDK's own: its stream builds two pydantic models per text delta and keeps a
snapshot of the whole message, which a relay does not need; on a relay that was most of
the server's CPU (docs/performance.md). This reads only what the relay uses: each event's
JSON `data` (which names its own `type`), skipping `ping`. The format is Anthropic's fixed one
(`event: NAME`, `data: JSON`, blank line), read with the WHATWG line rules that matter
for it: LF or CRLF line ends, an event ends at a blank line, `data:` lines join with LF.

Nearly every event of a reply is a text delta, and the API writes each in one fixed
compact form. With `fast_text`, `EventReader` recognises that form by its bytes and
decodes only the text's JSON string (json's own C string scanner), handing the text over
as a `str`; anything else, or anything that does not match the form exactly, is parsed
whole. So the fast path gives exactly what a full parse would, or is not taken.
"""

from __future__ import annotations

import json
import json.decoder
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

# A text delta as the API writes it: this, the index's digits, _TEXT_MID, one JSON string,
# then _TEXT_END; the event's only other line is its `event:` line.
_TEXT_HEAD: Final = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
# The same whole, when its string has no escape, so that the string's bytes are its text
# (JSON forbids raw control characters in a string): most text deltas are.
_PLAIN_TEXT: Final = re.compile(
    rb'event: content_block_delta\ndata: \{"type":"content_block_delta","index":(?:0|[1-9][0-9]*),'
    rb'"delta":\{"type":"text_delta","text":"([^"\\\x00-\x1f]*)"\}\}'
).fullmatch
_TEXT_MID: Final = b',"delta":{"type":"text_delta","text":'
_TEXT_END: Final = b"}}"
_HEAD_LEN: Final = len(_TEXT_HEAD)
_MID_LEN: Final = len(_TEXT_MID)

Parsed = str | dict[str, Any]
"""A text delta's text (fast path), or an event's parsed `data`."""
_NONE: Final[tuple[Parsed, ...]] = ()
# json's own string scanner (in C where there is one): what json.loads decodes a string with.
_scanstring: Final[Callable[[str, int], tuple[str, int]]] = (
    json.decoder.scanstring  # type: ignore[attr-defined]
)


class EventReader:
    """Feed it the body's chunks as they come; each feed returns the events completed."""

    __slots__ = ("_buffer", "_fast")

    def __init__(self, *, fast_text: bool) -> None:
        self._buffer = b""
        self._fast = fast_text  # text deltas as their text (the index is not needed)

    def feed(self, chunk: bytes) -> Sequence[Parsed]:
        """The events `chunk` completes, in order: a `str` for a text delta when
        `fast_text` (empty texts left out), else the event's `data` (`ping` skipped)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\n\n" not in buffer and b"\r\n\r\n" not in buffer:
            self._buffer = buffer
            return _NONE
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        *blocks, self._buffer = buffer.split(b"\n\n")
        # What is left had no blank line after it yet: the next chunks complete it (an
        # event cut off at the body's end is discarded, as WHATWG says).
        out: list[Parsed] = []
        fast = self._fast
        for block in blocks:
            if fast and block.startswith(_TEXT_HEAD):
                plain = _PLAIN_TEXT(block)
                if plain is not None:
                    if plain.end(1) > plain.start(1):
                        # As json.loads decodes bytes (invalid UTF-8 raises as it does).
                        out.append(plain[1].decode("utf-8", "surrogatepass"))
                    continue
                text = _text(block)
                if text is not None:
                    if text:
                        out.append(text)
                    continue
            data = _data(block)
            if data is not None:
                out.append(data)
        return out


async def anthropic_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Each event's parsed `data`, in order; `ping` events are skipped."""
    reader = EventReader(fast_text=False)
    async for chunk in chunks:
        for event in reader.feed(chunk):
            assert not isinstance(event, str)  # fast_text is off
            yield event


def _text(block: bytes) -> str | None:
    """A text delta's text, when `block` is exactly the API's form of one; else None."""
    mid = block.find(_TEXT_MID, _HEAD_LEN)
    index = block[_HEAD_LEN:mid]
    if mid < 0 or not index.isdigit() or (index[0] == 0x30 and len(index) > 1):
        return None  # JSON has no leading zeros: a full parse says what is wrong
    if not block.endswith(_TEXT_END):
        return None
    try:
        # As json.loads decodes bytes; then the string must be all that is left.
        literal = block[mid + _MID_LEN:-2].decode("utf-8", "surrogatepass")
        if literal[:1] != '"':
            return None
        text, end = _scanstring(literal, 1)
    except ValueError:  # invalid UTF-8 or JSON: the full parse raises it
        return None
    return text if end == len(literal) else None


def _data(block: bytes) -> dict[str, Any] | None:
    parts = [line[5:].removeprefix(b" ") for line in block.split(b"\n")
             if line.startswith(b"data:")]
    if not parts:
        return None  # a comment, or an event without data
    payload = parts[0] if len(parts) == 1 else b"\n".join(parts)
    value = json.loads(payload)
    if not isinstance(value, dict) or value.get("type") == "ping":
        return None
    return value
