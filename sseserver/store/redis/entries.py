"""What the owner keeps of each running stream (`Owned`), and the entries it queues for
its master's writer (log.py): a stream's creation, its frames, a nudge or a goodbye to its
followers, and its end, each written in the order `order` gives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import StoreUnavailable, StreamLost
from ..base import Signal, StreamListener
from .keyspace import StreamKeys

if TYPE_CHECKING:
    from .log import LogWriter


class Owned:
    """What the owner of a running generation keeps about its stream."""

    __slots__ = ("busy", "cancelled", "confirmed", "ended", "failure", "frames", "kept_at",
                 "keys", "listener", "local", "on_signal", "owner", "pending", "remote",
                 "stalled", "stalled_since", "stream_id", "waiters", "writer")

    def __init__(self, prefix: str, stream_id: str, owner: str = "") -> None:
        self.stream_id = stream_id
        self.owner = owner  # the user who started it ("" for none), in its meta too
        # When its keys were last given RUNNING_TTL_MS (monotonic): at its creation, then
        # by the owner's upkeep.
        self.kept_at = time.monotonic()
        self.keys = StreamKeys(prefix, stream_id)
        self.frames: list[bytes] = []  # appended; the first `confirmed` are in Redis
        self.confirmed = 0
        self.on_signal: Callable[[Signal], None] | None = None  # the owner's, from watch()
        self.local = 0  # subscribers in this process
        self.remote = False  # other processes have subscribers (their B and I messages)
        self.busy = False  # what the owner was last told
        self.cancelled = False
        self.ended = False  # Redis has its end: read the log from now on
        self.failure: StoreUnavailable | StreamLost | None = None
        self.listener: StreamListener | None = None  # this process's followers
        self.waiters: list[asyncio.Future[None]] = []  # readers waiting for a frame
        self.writer: LogWriter | None = None  # of the master its entries go to
        self.pending = 0  # entries given to that writer and not answered yet
        # Entries redirected (the slot moved), waiting for the master serving it now.
        self.stalled: list[Entry] | None = None
        self.stalled_since = 0.0

    def apply(self, kind: bytes) -> bool:
        """A control message: C cancel, B another process's first subscriber came, I the
        last one left. True when other processes follow it from now on."""
        if kind == b"C":
            if not self.cancelled:
                self.cancelled = True
                self.signal(Signal.CANCEL)
            return False
        was, self.remote = self.remote, kind == b"B"
        self.presence_changed()
        return self.remote and not was

    def presence_changed(self) -> None:
        busy = self.local > 0 or self.remote
        if busy != self.busy:
            self.busy = busy
            self.signal(Signal.BUSY if busy else Signal.IDLE)

    def signal(self, signal: Signal) -> None:
        if self.on_signal is not None:
            self.on_signal(signal)

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, failure: StoreUnavailable | StreamLost) -> None:
        """Nothing more of this stream can be written: the generation stops at its next
        append, and followers read the log for how it ended."""
        if self.failure is None:
            self.failure = failure
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.end(False)
        self.wake()


class Step:
    """A queued creation or end of a stream, and whoever waits for it to be written."""

    __slots__ = ("done", "payload")

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, failure: Exception | None = None) -> None:
        if not self.done.done():
            if failure is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(failure)


class Create(Step):
    __slots__ = ()


class End(Step):
    __slots__ = ()


class Nudge(Step):
    """Tells followers that started while nothing was published to read the log."""

    __slots__ = ()


class Gone(Step):
    """Tells followers that Redis lost the stream (its keys vanished while it ran), so
    that they read the log, find nothing and end, rather than wait for frames that will
    never be published."""

    __slots__ = ()


# The stream, the frame's index (the end's: the index after the last frame), and what.
Entry = tuple[Owned, int, bytes | Step]


def order(entry: Entry) -> tuple[int, int]:
    """Where an entry falls in its stream: a creation, then frames, nudges and the end."""
    _, index, what = entry
    rank = 0 if isinstance(what, Create) else 2 if isinstance(what, End) else 1
    return index, rank
