"""The SSE wire format: events to the exact bytes a browser's EventSource parses.

Pure functions, no I/O. Field rules from WHATWG HTML, "server-sent events"
(docs/protocol.md, "Frames"):
`event` and `id` never hold CR, LF or NUL (a line break would end the field early, and
a NUL in `id` makes the browser ignore it); `retry` is ASCII digits only; every payload
is JSON, so `data` never holds a raw line break; every frame ends with a blank line.
"""

from __future__ import annotations

import json
from typing import Final

from .errors import FieldError

# Headers of every SSE response. X-Accel-Buffering stops nginx from buffering.
SSE_HEADERS: Final[dict[str, str]] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}

PING: Final = b": ping\n\n"

# One encoder for every event: json.dumps with options builds a new one per call.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _check_field(name: str, value: str) -> None:
    # Three C-level scans: this runs for every event's name and id.
    if "\n" in value or "\r" in value or "\0" in value:
        raise FieldError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise FieldError(f"SSE {name} must be valid Unicode: {value!r}") from None


def to_json(value: object) -> str:
    """Compact JSON with non-ASCII kept as UTF-8 (fewer bytes); json escapes every control
    character, so the result never holds a raw CR or LF."""
    return _JSON.encode(value)


def encode_event(event: str, data_json: str, event_id: str) -> bytes:
    """One frame. `data_json` must already be JSON (see `to_json`), which has no line breaks."""
    _check_field("event", event)
    _check_field("id", event_id)
    if "\n" in data_json or "\r" in data_json:
        raise FieldError("SSE data must be JSON without raw line breaks")
    return _frame(event_id, event, data_json)


class StreamFrames:
    """The frames of one stream, with ids `<stream>:0`, `<stream>:1`, ... The stream id is
    checked once and event names are ours, and `to_json` output has no raw line break, so
    a `message` frame costs one JSON encode and one f-string (the generation's hot path)."""

    __slots__ = ("count", "stream_id")

    def __init__(self, stream_id: str) -> None:
        _check_field("id", stream_id)
        self.stream_id = stream_id  # with ":" and the index, always a valid id
        self.count = 0

    def message(self, text: str) -> bytes:
        frame = _frame(f"{self.stream_id}:{self.count}", "message", _JSON.encode(text))
        self.count += 1
        return frame

    def event(self, event: str, data: object) -> bytes:
        _check_field("event", event)
        frame = _frame(f"{self.stream_id}:{self.count}", event, _JSON.encode(data))
        self.count += 1
        return frame


def _frame(event_id: str, event: str, data_json: str) -> bytes:
    try:
        return f"id: {event_id}\nevent: {event}\ndata: {data_json}\n\n".encode()
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; as a \uXXXX escape it still reaches
        # JavaScript's JSON.parse as the same string.
        ascii_json = json.dumps(json.loads(data_json), separators=(",", ":"), allow_nan=False)
        return f"id: {event_id}\nevent: {event}\ndata: {ascii_json}\n\n".encode()


def encode_retry(milliseconds: int) -> bytes:
    """The reconnection delay frame; `retry` must be ASCII digits only."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or milliseconds < 0:
        raise FieldError(f"SSE retry must be a non-negative integer: {milliseconds!r}")
    return b"retry: %d\n\n" % milliseconds
