"""The owner's side of the log: every append of this process goes out in batches, one
round trip per batch, and a generation never waits on Redis before its next chunk.

    append ─▶ entries (in order) ─▶ writer task: one APPEND script call per batch
                                      │  (XADD each frame at its index, PUBLISH it)
                                      ▼
                 confirmed: the stream's local listener and waiters get each frame

Frames that generations produce while a batch is in flight wait in `entries` and go out
together in the next one, with their ids fixed at append time, so order and ids stay exact
however the batches fall. Only what Redis has confirmed reaches this process's own
followers, so a frame a subscriber saw can always be read again from the log.

The entries wait in memory, bounded in bytes (WRITE_BUFFER_BYTES): past it an append waits
for the writer to catch up. A batch that fails marks its streams (`Owned.failure`): their
next append raises, and their followers are let go to read the truth from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

from ...errors import StoreUnavailable, StreamLost
from ..base import Signal, StreamListener
from .scripts import APPEND, StreamKeys

try:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError
except ImportError:  # the optional extra; RedisStore() says what to install
    Redis = Any  # type: ignore[assignment,misc]
    RedisError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# Appended bytes waiting for the writer, in all; past it an append waits.
WRITE_BUFFER_BYTES: Final = 16 * 1024 * 1024
# A batch must be confirmed within this long, or its streams fail as unavailable.
COMMAND_TIMEOUT: Final = 5.0
# A running stream's keys live this long unless its owner refreshes them (liveness.py).
RUNNING_TTL_MS: Final = 60_000


class Owned:
    """What the owner of a running generation keeps about its stream."""

    __slots__ = (
        "busy",
        "bytes",
        "cancelled",
        "confirmed",
        "failure",
        "keys",
        "listener",
        "next_index",
        "on_signal",
        "stream_id",
        "waiters",
    )

    def __init__(self, prefix: str, stream_id: str) -> None:
        self.stream_id = stream_id
        self.keys = StreamKeys(prefix, stream_id)
        self.next_index = 0  # frames appended
        self.confirmed = 0  # frames Redis has confirmed
        self.bytes = 0  # frame bytes appended, for --resume-max-mb
        self.on_signal: Callable[[Signal], None] | None = None  # the owner's, from watch()
        self.busy = False  # what the owner was last told
        self.cancelled = False
        self.failure: StoreUnavailable | StreamLost | None = None
        self.listener: StreamListener | None = None  # this process's followers
        self.waiters: list[asyncio.Future[None]] = []  # readers waiting for a frame

    def apply(self, kind: bytes) -> None:
        """A control message: C cancel, B a first subscriber, I the last one left."""
        if kind == b"C" and not self.cancelled:
            self.cancelled = True
            self.signal(Signal.CANCEL)
        elif kind == b"B" and not self.busy:
            self.busy = True
            self.signal(Signal.BUSY)
        elif kind == b"I" and self.busy:
            self.busy = False
            self.signal(Signal.IDLE)

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
            listener.end()
        self.wake()


class _End:
    """A queued end of a stream and whoever waits for it to be written."""

    __slots__ = ("done", "keep_ms", "reason")

    def __init__(self, reason: str, keep_ms: int) -> None:
        self.reason = reason
        self.keep_ms = keep_ms
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


Entry = tuple[Owned, int, bytes | _End]  # the stream, the frame's index (or the end's), what


class LogWriter:
    """The process's one writer of frames and ends, in batches."""

    def __init__(self, redis: Redis, prefix: str, token: str) -> None:
        self._redis = redis
        self._script = redis.register_script(APPEND)
        self._prefix = prefix
        self._token = token
        self._entries: list[Entry] = []
        self._bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # nothing queued nor in flight
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis writer")

    async def close(self) -> None:
        """Write what is queued (briefly), then stop."""
        if self._entries:
            self._wake.set()
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def frame(self, owned: Owned, frame: bytes) -> None:
        """Queue the stream's next frame; its index is fixed now."""
        self._entries.append((owned, owned.next_index, frame))
        owned.next_index += 1
        size = len(frame)
        owned.bytes += size
        self._bytes += size
        if self._bytes > WRITE_BUFFER_BYTES:
            self._room.clear()
        if not self._wake.is_set():
            self._wake.set()

    async def room(self) -> None:
        """Wait while the queued bytes are over WRITE_BUFFER_BYTES."""
        if not self._room.is_set():
            await self._room.wait()

    async def end(self, owned: Owned, reason: str, keep_ms: int) -> None:
        """Queue the stream's end after its frames, and wait until Redis has it."""
        end = _End(reason, keep_ms)
        self._entries.append((owned, owned.next_index, end))
        self._wake.set()
        await end.done

    async def _run(self) -> None:
        while True:
            if not self._entries:
                self._wake.clear()
                self._idle.set()
                await self._wake.wait()
            batch, self._entries = self._entries, []
            try:
                await self._flush(batch)
            finally:
                self._bytes -= sum(len(w) for _, _, w in batch if isinstance(w, bytes))
                if self._bytes <= WRITE_BUFFER_BYTES:
                    self._room.set()

    async def _flush(self, batch: list[Entry]) -> None:
        args: list[bytes | str | int] = [self._prefix, self._token, RUNNING_TTL_MS]
        for owned, index, what in batch:
            if isinstance(what, bytes):
                args += ("f", owned.stream_id, index + 1, what)
            else:
                args += ("e", owned.stream_id, index + 1, f"{what.reason}:{what.keep_ms}")
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                failed: list[Any] = await self._script(args=args)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            unavailable = StoreUnavailable(f"redis: {exc or 'no answer'}")
            for owned, _, what in batch:
                owned.fail(unavailable)
                if isinstance(what, _End) and not what.done.done():
                    what.done.set_exception(unavailable)
            return
        lost = {int(failed[i]) - 1: failed[i + 1] for i in range(0, len(failed), 2)}
        for number, (owned, index, what) in enumerate(batch):
            code = lost.get(number)
            if code is not None:
                owned.fail(StreamLost(f"{owned.stream_id} was ended by another process"
                                      if code == b"lost" else
                                      f"{owned.stream_id} is no longer in redis"))
                if isinstance(what, _End) and not what.done.done():
                    what.done.set_result(None)
                continue
            if isinstance(what, bytes):
                owned.confirmed = index + 1
                if owned.listener is not None:
                    owned.listener.frame(what, index)
                if owned.waiters:
                    owned.wake()
            else:
                listener, owned.listener = owned.listener, None
                if listener is not None:
                    listener.end()
                owned.wake()
                if not what.done.done():
                    what.done.set_result(None)

