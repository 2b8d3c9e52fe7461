"""Verification of one stream as its events arrive: ids `<stream>:<index>` strictly
consecutive (no gap, no duplicate, also across resumes with Last-Event-ID), `done`
received, the `error` event's type, and the expected number of events and messages.

Done inline in the data callback (no queue, no task), so checking every event costs the
load generator little; the totals go into the run's `Stats` when the stream ends.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .stats import Stats

if TYPE_CHECKING:
    from .protocol import Connection


class StreamCheck:
    """Verifies one stream as its events arrive, across connections (resumes)."""

    __slots__ = (
        "_drop_after", "_stats", "bad", "conn", "conn_events", "done", "duplicate",
        "error_type", "events", "first_message", "last_id", "last_message", "messages",
        "missing", "next_index", "started", "stream",
    )

    def __init__(self, stats: Stats, drop_after: int, started: float) -> None:
        self._stats = stats
        self._drop_after = drop_after
        self.started = started
        self.conn: Connection | None = None
        self.conn_events = 0
        self.stream: bytes | None = None
        self.next_index = 0
        self.last_id: bytes | None = None
        self.events = 0
        self.messages = 0
        self.missing = 0
        self.duplicate = 0
        self.bad = 0
        self.done = False
        self.error_type: str | None = None
        self.first_message: float | None = None
        self.last_message: float | None = None

    def attach(self, conn: Connection) -> None:
        """A new connection for this stream: gaps are not measured across it."""
        self.conn = conn
        self.conn_events = 0
        self.last_message = None

    def on_event(self, event_id: bytes | None, event: bytes, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if conn.dropped:
            return
        stats = self._stats
        now = conn.now
        self.events += 1
        self.conn_events += 1
        stats.events += 1
        if event_id is None:
            self.bad += 1
        else:
            stream, sep, index_text = event_id.rpartition(b":")
            try:
                index = int(index_text) if sep else -1
            except ValueError:
                index = -1
            if index < 0 or (self.stream is not None and stream != self.stream):
                self.bad += 1
            else:
                self.stream = stream
                if index == self.next_index:
                    self.next_index = index + 1
                elif index < self.next_index:
                    self.duplicate += 1
                else:
                    self.missing += index - self.next_index
                    self.next_index = index + 1
                self.last_id = event_id
        if event == b"message":
            self.messages += 1
            stats.messages += 1
            if self.first_message is None:
                self.first_message = now
                if stats.recording:
                    stats.ttfe.append(now - self.started)
            elif self.last_message is not None and stats.recording:
                stats.gaps.append(now - self.last_message)
            self.last_message = now
        elif event == b"done":
            self.done = True
        elif event == b"error":
            try:
                self.error_type = str(json.loads(data)["type"])
            except (ValueError, KeyError, TypeError):
                self.error_type = "unreadable"
        if (self._drop_after and self.conn_events >= self._drop_after and not self.done
                and self.error_type is None):
            conn.drop()

    def finish(self, *, ok: bool, expect_events: int | None,
               expect_messages: int | None) -> None:
        """The stream ended (completed, or failed): add its verdicts to the run's totals.

        A stream cut at the run's deadline never gets here: it was not wrong, only stopped.
        """
        stats = self._stats
        if ok:
            stats.completed += 1
        else:
            stats.failed += 1
        stats.checked += 1
        stats.missing += self.missing
        stats.duplicate += self.duplicate
        stats.bad_id += self.bad
        stats.counts[self.events] += 1
        if not self.done:
            stats.no_done += 1
        elif (expect_events is not None and self.events != expect_events) or (
            expect_messages is not None and self.messages != expect_messages
        ):
            stats.wrong_count += 1
