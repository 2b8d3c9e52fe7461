"""SSE body bytes into events, as WHATWG HTML's event-stream parser reads them.

The load generator's hot path: every byte of every stream goes through `feed`, so blank
lines are found with `bytes.split` (in C) and the common frame shape takes a fast path.
"""

from __future__ import annotations

from collections.abc import Callable

OnEvent = Callable[[bytes | None, bytes, bytes], None]
"""Called with (id or None, event name, data) for each dispatched event."""


class SseDecoder:
    """Splits an SSE body into events: (id or None, event name, data), per WHATWG HTML.

    Minimal on purpose: line endings CRLF, LF and CR; comments skipped; `data` lines
    joined with LF; an event is dispatched only when it has data. `retry` is ignored.
    """

    __slots__ = ("_buf", "_cr", "_on_event")

    def __init__(self, on_event: OnEvent) -> None:
        self._on_event = on_event
        self._buf = b""
        self._cr = False  # the last chunk ended in CR: its LF may come next

    def feed(self, data: bytes) -> None:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                data = data[:-1]
                self._cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + data if self._buf else data
        frames = buf.split(b"\n\n")
        self._buf = frames.pop()
        on_event = self._on_event
        for frame in frames:
            lines = frame.split(b"\n")
            if len(lines) == 3:  # fast path: `id: I`, `event: E`, `data: D`, as we send
                first, second, third = lines
                if first[:4] == b"id: " and second[:7] == b"event: " and third[:6] == b"data: ":
                    on_event(first[4:], second[7:], third[6:])
                    continue
            event_id: bytes | None = None
            event = b"message"
            payload: bytes | None = None
            for line in lines:
                if not line or line[0] == 0x3A:  # blank, or ':' comment (heartbeat)
                    continue
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    payload = value if payload is None else payload + b"\n" + value
                elif name == b"id":
                    event_id = value
                elif name == b"event":
                    event = value
            if payload is not None:
                on_event(event_id, event, payload)
