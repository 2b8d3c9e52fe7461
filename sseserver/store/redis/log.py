"""The owner's side of the log: every creation, append and end of this process goes out in
batches, pipelined on one connection, and a generation never waits on Redis before its
next chunk.

    create/append/end ─▶ entries (in order) ─▶ writer task: one APPEND script call a batch
                                                 │ (XADD each frame at its index, PUBLISH)
                                                 ▼  answers, in order (answers task)
                 confirmed: the stream's local listener and waiters get each frame

Frames that generations produce while the writer sends wait in `entries` and go out
together in the next batch, with their ids fixed at append time. A batch is sent without
waiting for the answer to the one before (up to MAX_IN_FLIGHT unanswered): Redis runs a
connection's commands in order, so order and ids stay exact however the batches fall, and
a frame waits for one round trip, not for the batch in flight before it too.

The owner keeps its running streams' frames too, so its own subscribers read and follow
them without a round trip; only what Redis has confirmed is shown to them, so a frame a
subscriber saw can always be read again from the log.

The entries wait in memory, bounded in bytes (WRITE_BUFFER_BYTES): past it an append waits
for the writer to catch up. A batch that fails marks its streams (`Owned.failure`): their
next append raises, and their followers are let go to read the truth from the log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from ...errors import StoreUnavailable, StreamLost
from ..base import Batch, Signal, StreamListener
from .scripts import APPEND, StreamKeys

try:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError, ResponseError
except ImportError:  # the optional extra; RedisStore() says what to install
    Redis = Any  # type: ignore[assignment,misc]
    RedisError = OSError  # type: ignore[assignment,misc]
    ResponseError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# Appended bytes waiting for the writer, in all; past it an append waits.
WRITE_BUFFER_BYTES: Final = 16 * 1024 * 1024
# A batch must be confirmed within this long, or its streams fail as unavailable.
COMMAND_TIMEOUT: Final = 5.0
# Batches sent and not yet answered, at most.
MAX_IN_FLIGHT: Final = 8
# A running stream's keys live this long unless its owner refreshes them (liveness.py).
RUNNING_TTL_MS: Final = 60_000


class Owned:
    """What the owner of a running generation keeps about its stream."""

    __slots__ = ("busy", "cancelled", "confirmed", "ended", "failure", "frames",
                 "keys", "listener", "local", "on_signal", "owner", "remote", "stream_id",
                 "waiters")

    def __init__(self, prefix: str, stream_id: str, owner: str = "") -> None:
        self.stream_id = stream_id
        self.owner = owner  # the user who started it ("" for none), in its meta too
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

    def apply(self, kind: bytes) -> None:
        """A control message: C cancel, B another process's first subscriber came, I the
        last one left."""
        if kind == b"C":
            if not self.cancelled:
                self.cancelled = True
                self.signal(Signal.CANCEL)
        else:
            self.remote = kind == b"B"
            self.presence_changed()

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


class _Step:
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


class _Create(_Step):
    __slots__ = ()


class _End(_Step):
    __slots__ = ()


# The stream, the frame's index (the end's: the index after the last frame), and what.
Entry = tuple[Owned, int, bytes | _Step]


class LogWriter:
    """The process's one writer of frames and ends, in batches pipelined on one connection.

    A batch goes out as soon as the previous one is sent, not answered: Redis answers a
    connection's commands in order, so batches land in order, and a frame waits for at
    most one round trip of its own, not also for the one in flight before it."""

    def __init__(self, redis: Redis, prefix: str, token: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._token = token
        self._entries: list[Entry] = []
        self._bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # nothing queued nor in flight
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None  # borrowed from the command pool while it works
        self._sha = ""
        self._in_flight: collections.deque[list[Entry]] = collections.deque()
        self._sent = asyncio.Event()  # a batch joined the flight
        self._landed = asyncio.Event()  # a batch's answer was applied
        self._answers: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis writer")

    async def close(self) -> None:
        """Write what is queued (briefly), then stop."""
        if self._entries or self._in_flight:
            self._wake.set()
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._idle.wait()
        tasks = [t for t in (self._task, self._answers) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._let_go(OSError("the writer stopped"), self._connection)

    async def create(self, owned: Owned) -> None:
        """Register the stream as this process's, and wait until Redis has it."""
        create = _Create(owned.owner)
        self._entries.append((owned, 0, create))
        self._wake.set()
        await create.done

    def frame(self, owned: Owned, frame: bytes) -> None:
        """Queue the stream's next frame; its index is fixed now."""
        frames = owned.frames
        self._entries.append((owned, len(frames), frame))
        frames.append(frame)
        self._bytes += len(frame)
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
        end = _End(f"{reason}:{keep_ms}")
        self._entries.append((owned, len(owned.frames), end))
        self._wake.set()
        await end.done

    async def _run(self) -> None:
        while True:
            if not self._entries:
                self._wake.clear()
                if not self._in_flight:
                    self._idle.set()
                await self._wake.wait()
                continue
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                self._landed.clear()
                await self._landed.wait()
                continue
            batch, self._entries = self._entries, []
            await self._send(batch)

    async def _send(self, batch: list[Entry]) -> None:
        args: list[bytes | str | int] = [self._prefix, self._token, RUNNING_TTL_MS]
        for owned, index, what in batch:
            if isinstance(what, bytes):
                args += ("f", owned.stream_id, index + 1, what)
            else:
                kind = "c" if isinstance(what, _Create) else "e"
                args += (kind, owned.stream_id, index + 1, what.payload)
        connection = None
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                connection = await self._connect()
                self._in_flight.append(batch)
                self._sent.set()
                await connection.send_command("EVALSHA", self._sha, 0, *args)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            if connection is None:
                self._land(batch, None, exc)
            else:  # in flight: it fails with the connection
                await self._let_go(exc, connection)

    async def _connect(self) -> Any:
        """The writer's connection, with the script loaded, and the task reading its
        answers."""
        if self._connection is None:
            pool: Any = self._redis.connection_pool
            connection = await pool.get_connection()
            try:
                await connection.send_command("SCRIPT", "LOAD", APPEND)
                sha = await connection.read_response()
            except BaseException:
                await connection.disconnect()
                await pool.release(connection)
                raise
            self._sha = sha.decode() if isinstance(sha, bytes) else str(sha)
            self._connection = connection
            self._answers = asyncio.create_task(self._read_answers(connection),
                                                name="redis writer answers")
        return self._connection

    async def _read_answers(self, connection: Any) -> None:
        """Each answer, in order, for the oldest batch in flight."""
        while connection is self._connection:
            if not self._in_flight:
                self._sent.clear()
                await self._sent.wait()
                continue
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    answer = await connection.read_response()
            except ResponseError as exc:  # that batch's script failed; the connection is fine
                self._land(self._in_flight.popleft(), None, exc)
                continue
            except (RedisError, OSError) as exc:
                await self._let_go(exc, connection)
                return
            self._land(self._in_flight.popleft(), answer, None)

    async def _let_go(self, exc: Exception, connection: Any) -> None:
        """`connection` broke (or the writer stops): if it is the current one, every batch
        in flight on it fails, and the next batch takes a fresh connection."""
        if connection is None or connection is not self._connection:
            return  # already let go; the batches in flight now are another connection's
        self._connection = None
        while self._in_flight:
            self._land(self._in_flight.popleft(), None, exc)
        pool: Any = self._redis.connection_pool
        with contextlib.suppress(Exception):
            await connection.disconnect()
        with contextlib.suppress(Exception):
            await pool.release(connection)

    def _land(self, batch: list[Entry], failed: list[Any] | None,
              exc: Exception | None) -> None:
        """A batch's answer: its frames are confirmed to their followers, or its streams
        fail."""
        try:
            self._apply(batch, failed, exc)
        finally:
            self._bytes -= sum(len(w) for _, _, w in batch if isinstance(w, bytes))
            if self._bytes <= WRITE_BUFFER_BYTES:
                self._room.set()
            if not self._entries and not self._in_flight:
                self._idle.set()
            self._landed.set()

    def _apply(self, batch: list[Entry], failed: list[Any] | None,
               exc: Exception | None) -> None:
        if exc is not None or failed is None:
            unavailable = StoreUnavailable(f"redis: {exc or 'no answer'}")
            for owned, _, what in batch:
                owned.fail(unavailable)
                if isinstance(what, _Step):
                    what.settle(unavailable)
            return
        lost = {int(failed[i]) - 1: failed[i + 1] for i in range(0, len(failed), 2)}
        for number, (owned, index, what) in enumerate(batch):
            code = lost.get(number)
            if code is not None:
                owned.fail(StreamLost(f"{owned.stream_id} was ended by another process"
                                      if code == b"lost" else
                                      f"{owned.stream_id} is no longer in redis"))
                if isinstance(what, _Step):
                    what.settle()
                continue
            if isinstance(what, bytes):
                owned.confirmed = index + 1
                if owned.listener is not None:
                    owned.listener.frame(what, index)
                if owned.waiters:
                    owned.wake()
            elif isinstance(what, _End):
                owned.ended = True
                listener, owned.listener = owned.listener, None
                if listener is not None:
                    listener.end(what.payload.startswith("done:"))
                owned.wake()
                what.settle()
            else:
                what.settle()


def _fields(raw: Any) -> dict[bytes, bytes]:
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def batch_of(entries: Sequence[Any], *, ended_before: bool, held: int) -> Batch:
    """Entries (frames, then maybe the end) as a Batch. `ended_before`: the stream has
    ended and nothing was read, so the position is at or past its end."""
    frames: list[bytes] = []
    for _, raw in entries:
        fields = _fields(raw)
        frame = fields.get(b"f")
        if frame is None:
            return Batch(frames, True, lost=fields.get(b"e") == b"lost", held=held)
        frames.append(frame)
    return Batch(frames, ended_before and not frames, held=held)
