"""A WHATWG-conformant, incremental Server-Sent Events parser for tests.

It follows the HTML Standard's "Parsing an event stream" and "Interpreting an event
stream" algorithms step by step, so tests see the stream exactly as a browser's
EventSource would: bytes may arrive in arbitrary chunks (split inside a UTF-8 character,
or between the CR and LF of one line end), and the result must not depend on where the
splits fall.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["SSEEvent", "SSEParser", "parse_all"]

# end-of-line = ( cr lf / cr / lf ); the alternation order makes CRLF one line end.
_LINE_END: Final = re.compile(r"\r\n|\r|\n")
_ASCII_DIGITS: Final = re.compile(r"[0-9]+")
_BOM: Final = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched MessageEvent: what `EventSource` hands to a listener."""

    type: str
    data: str
    last_event_id: str


class SSEParser:
    """Feed bytes in any chunking; get back the events each chunk completes.

    `retry` is the last valid `retry` value seen (the reconnection time), `comments`
    holds the text after the ':' of every comment line (so `: ping` is recorded as
    `" ping"`), and `last_event_id` is the spec's "last event ID string": the value a
    reconnecting browser would send as `Last-Event-ID`. Like the spec, it is updated
    only when an event is dispatched (a blank line), not as soon as an `id` line is read.
    """

    def __init__(self) -> None:
        # The spec's "UTF-8 decode": errors become U+FFFD, one leading BOM is dropped.
        # The incremental decoder keeps a character split across chunks until it is whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._seen_text = False
        self._pending_cr = False  # last line ended with CR; a leading LF must be skipped
        self._line_parts: list[str] = []
        self._data = ""
        self._event_type = ""
        self._last_event_id_buffer = ""
        self.retry: int | None = None
        self.comments: list[str] = []
        self.last_event_id = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume `chunk`; return the events whose terminating blank line it completed."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._seen_text:
            self._seen_text = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._pending_cr and text:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            self._line_parts.append(text[start : match.start()])
            line = "".join(self._line_parts)
            self._line_parts.clear()
            event = self._process_line(line)
            if event is not None:
                events.append(event)
            start = match.end()
            # A CR at the very end may be the first half of a CRLF split across chunks.
            self._pending_cr = match.group() == "\r" and start == len(text)
        if start < len(text):
            self._line_parts.append(text[start:])
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        """One line of "Interpreting an event stream"."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._process_field(name, value)
        return None

    def _process_field(self, name: str, value: str) -> None:
        """The spec's "process the field"; unknown names are ignored."""
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                self._last_event_id_buffer = value
        elif name == "retry" and _ASCII_DIGITS.fullmatch(value):
            # fullmatch with [0-9]+ rejects "", signs, spaces and non-ASCII digits,
            # all of which int() would otherwise accept or choke on.
            self.retry = int(value, 10)

    def _dispatch(self) -> SSEEvent | None:
        """The spec's "dispatch the event" on a blank line."""
        self.last_event_id = self._last_event_id_buffer
        if not self._data:
            self._event_type = ""
            return None
        data = self._data[:-1] if self._data.endswith("\n") else self._data
        event = SSEEvent(
            type=self._event_type or "message",
            data=data,
            last_event_id=self.last_event_id,
        )
        self._data = ""
        self._event_type = ""
        return event


def parse_all(data: bytes) -> list[SSEEvent]:
    """Parse a complete stream; a trailing event without its blank line is discarded."""
    return SSEParser().feed(data)
