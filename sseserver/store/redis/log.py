"""The owner's side of the log: every creation, append and end of this process goes out in
batches, pipelined on one connection per master, and a generation never waits on Redis
before its next chunk.

    create/append/end ─▶ entries (in order) ─▶ the writer of the stream's master: one
                                                 round trip a batch, plain commands
                                                 (XADD each frame at its index; PUBLISH
                                                 it only while other processes follow)
                                                 ▼  answers, in order (answers task)
                 confirmed: the stream's local listener and waiters get each frame

Frames that generations produce while the writer sends wait in `entries` and go out
together in the next batch, with their ids fixed at append time. A busy writer sends at
most one batch per interval (`--redis-batch-ms`; an idle one sends at once): Redis's
cost, and a master's replica link's, is largely per batch, and at Claude's pace a batch
per loop step carries only a few frames. A batch is sent without waiting for the answer to the one
before (up to MAX_IN_FLIGHT unanswered): Redis runs a connection's commands in order, so
order and ids stay exact however the batches fall, and a frame waits for one round trip,
not for the batch in flight before it too.

A frame costs Redis one `XADD`, and one `PUBLISH` (`SPUBLISH` on a cluster) only while a
process other than the owner has subscribers (the owner hears it from presence, and then
publishes `h<n>` so that a follower that started meanwhile reads the log). A creation is a
plain `HSET` and `PEXPIRE`; an end is a small script (scripts.py), since it must check that
the stream is still the owner's.

The owner keeps its running streams' frames too, so its own subscribers read and follow
them without a round trip; only what Redis has confirmed is shown to them, so a frame a
subscriber saw can always be read again from the log.

On a cluster, a slot that moves (`MOVED`, or `ASK` and `TRYAGAIN` while it migrates)
answers a stream's entries with a redirection: they wait, in order, with every later entry
of that stream, until nothing of it is in flight, and then go to the master serving the
slot now. A master that fails answers nothing: its streams fail (their end is `lost`).

The entries wait in memory, bounded in bytes (WRITE_BUFFER_BYTES): past it an append waits
for the writer to catch up. A batch that fails marks its streams (`Owned.failure`): their
next append raises, and their followers are let go to read the truth from the log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from ...errors import StoreUnavailable, StreamLost
from ..base import Batch, Signal, StreamListener
from .keyspace import StreamKeys
from .resp import command, xadd
from .scripts import END
from .shards import MIGRATING_PAUSE, Shards

try:
    from redis.exceptions import AskError, MovedError, RedisError, ResponseError, TryAgainError
except ImportError:  # the optional extra; RedisStore() says what to install
    RedisError = OSError  # type: ignore[assignment,misc]
    ResponseError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# Appended bytes waiting for a writer, in all; past it an append waits.
WRITE_BUFFER_BYTES: Final = 16 * 1024 * 1024
# A batch must be confirmed within this long, or its streams fail as unavailable; a
# stream's entries may wait this long for its slot to settle.
COMMAND_TIMEOUT: Final = 5.0
# Batches sent and not yet answered, at most.
MAX_IN_FLIGHT: Final = 8
# A busy writer's batches are at least this far apart, in seconds, unless the store is
# given another (--redis-batch-ms): what a frame may wait for the frames after it to
# join its batch.
BATCH_INTERVAL: Final = 0.002
# A running stream's keys live this long unless its owner refreshes them (liveness.py).
RUNNING_TTL_MS: Final = 60_000


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


class _Nudge(_Step):
    """Tells followers that started while nothing was published to read the log."""

    __slots__ = ()


class _Gone(_Step):
    """Tells followers that Redis lost the stream (its keys vanished while it ran), so
    that they read the log, find nothing and end, rather than wait for frames that will
    never be published."""

    __slots__ = ()


# The stream, the frame's index (the end's: the index after the last frame), and what.
Entry = tuple[Owned, int, bytes | _Step]


def _order(entry: Entry) -> tuple[int, int]:
    """Where an entry falls in its stream: a creation, then frames, nudges and the end."""
    _, index, what = entry
    rank = 0 if isinstance(what, _Create) else 2 if isinstance(what, _End) else 1
    return index, rank


class LogWriter:
    """One master's writer of frames and ends, in batches pipelined on one connection.

    A batch goes out as soon as the previous one is sent, not answered: Redis answers a
    connection's commands in order, so batches land in order, and a frame waits for at
    most one round trip of its own, not also for the one in flight before it."""

    def __init__(self, writers: Writers, client: Any) -> None:
        self._writers = writers
        self._client = client
        self._publish = writers.publish
        self._token = writers.token
        self._entries: list[Entry] = []
        self._bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # nothing queued nor in flight
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None  # borrowed from the command pool while it works
        self._end_sha = ""
        self._in_flight: collections.deque[tuple[list[Entry], list[int]]] = (
            collections.deque())
        self._sent = asyncio.Event()  # a batch joined the flight
        self._landed = asyncio.Event()  # a batch's answer was applied
        self._answers: asyncio.Task[None] | None = None
        self._closing = False
        self._next_batch = 0.0  # loop time from which the next batch may go
        self._interval = writers.batch_interval

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
        self._closing = True
        await self._let_go(OSError("the writer stopped"), self._connection)
        if self._entries:  # never sent: their streams fail
            batch, self._entries = self._entries, []
            self._land(batch, None, StoreUnavailable("redis: the writer stopped"))

    def put(self, entry: Entry) -> None:
        owned, _, what = entry
        owned.writer = self
        owned.pending += 1
        self._entries.append(entry)
        if isinstance(what, bytes):
            self._bytes += len(what)
            if self._bytes > WRITE_BUFFER_BYTES:
                self._room.clear()
        if not self._wake.is_set():
            self._wake.set()

    async def room(self) -> None:
        """Wait while the queued bytes are over WRITE_BUFFER_BYTES."""
        if not self._room.is_set():
            await self._room.wait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
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
            now = loop.time()
            if now < self._next_batch and self._connection is not None:
                # (Without a connection the batch goes at once: it fails at once if Redis
                # is down, and its streams stop without waiting.)
                await asyncio.sleep(self._next_batch - now)
                continue
            self._next_batch = now + self._interval
            batch, self._entries = self._entries, []
            await self._send(batch)

    def _commands(self, batch: list[Entry]) -> tuple[bytes, list[int]]:
        """The batch's commands, packed (resp.py), and how many each entry sent."""
        commands: list[bytes] = []
        add = commands.append
        counts: list[int] = []
        publish = self._publish
        for owned, index, what in batch:
            keys = owned.keys
            before = len(commands)
            if isinstance(what, bytes):
                if index == 0:
                    add(command("XADD", keys.log, "0-1", "f", what))
                    add(command("PEXPIRE", keys.log, RUNNING_TTL_MS))
                else:
                    add(xadd(keys.append_head, index + 1, what))
                if owned.remote:
                    add(command(publish, keys.channel, b"f%d:%b" % (index, what)))
            elif isinstance(what, _Create):
                user = ("user", what.payload) if what.payload else ()
                add(command("HSET", keys.meta, "owner", self._token, *user))
                add(command("PEXPIRE", keys.meta, RUNNING_TTL_MS))
            elif isinstance(what, _Nudge):
                add(command(publish, keys.channel, f"h{index}"))
            elif isinstance(what, _Gone):
                add(command(publish, keys.channel, f"e{index}:lost"))
            else:
                reason, _, keep_ms = what.payload.partition(":")
                add(command("EVALSHA", self._end_sha, 3, keys.log, keys.meta, keys.subs,
                            self._token, index + 1, reason, keep_ms, publish))
            counts.append(len(commands) - before)
        return b"".join(commands), counts

    async def _send(self, batch: list[Entry]) -> None:
        connection = None
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                connection = await self._connect()
                commands, counts = self._commands(batch)
                self._in_flight.append((batch, counts))
                self._sent.set()
                await connection.send_packed_command(commands)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            if connection is None:
                self._land(batch, None, exc)
            else:  # in flight: it fails with the connection
                await self._let_go(exc, connection)

    async def _connect(self) -> Any:
        """The writer's connection, with the end's script loaded, and the task reading
        its answers."""
        if self._connection is None:
            pool: Any = self._client.connection_pool
            connection = await pool.get_connection()
            try:
                await connection.send_command("SCRIPT", "LOAD", END)
                sha = await connection.read_response()
            except BaseException:
                await connection.disconnect()
                await pool.release(connection)
                raise
            self._end_sha = sha.decode() if isinstance(sha, bytes) else str(sha)
            self._connection = connection
            self._answers = asyncio.create_task(self._read_answers(connection),
                                                name="redis writer answers")
        return self._connection

    async def _read_answers(self, connection: Any) -> None:
        """The answers, in order, for the oldest batch in flight: per entry, its first
        command's."""
        while connection is self._connection:
            if not self._in_flight:
                self._sent.clear()
                await self._sent.wait()
                continue
            batch, counts = self._in_flight[0]
            answers: list[Any] = []
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    for count in counts:
                        for number in range(count):
                            try:
                                answer = await connection.read_response()
                            except ResponseError as exc:  # that command failed, not the link
                                answer = exc
                            if number == 0:
                                answers.append(answer)
            except (RedisError, OSError) as exc:
                await self._let_go(exc, connection)
                return
            self._in_flight.popleft()
            self._land(batch, answers, None)

    async def _let_go(self, exc: Exception, connection: Any) -> None:
        """`connection` broke (or the writer stops): if it is the current one, every batch
        in flight on it fails, and the next batch takes a fresh connection."""
        if connection is None or connection is not self._connection:
            return  # already let go; the batches in flight now are another connection's
        self._connection = None
        while self._in_flight:
            self._land(self._in_flight.popleft()[0], None, exc)
        pool: Any = self._client.connection_pool
        with contextlib.suppress(Exception):
            await connection.disconnect()
        with contextlib.suppress(Exception):
            await pool.release(connection)
        if not self._closing:
            self._writers.lost_master()

    def _land(self, batch: list[Entry], answers: list[Any] | None,
              exc: Exception | None) -> None:
        """A batch's answer: its frames are confirmed to their followers, or its streams
        fail, or wait for their slot's new master."""
        try:
            self._apply(batch, answers, exc)
        finally:
            self._bytes -= sum(len(w) for _, _, w in batch if isinstance(w, bytes))
            if self._bytes <= WRITE_BUFFER_BYTES:
                self._room.set()
            if not self._entries and not self._in_flight:
                self._idle.set()
            self._landed.set()

    def _apply(self, batch: list[Entry], answers: list[Any] | None,
               exc: Exception | None) -> None:
        stalled: list[Owned] = []
        if exc is not None or answers is None:
            unavailable = StoreUnavailable(f"redis: {exc or 'no answer'}")
            for owned, _, what in batch:
                owned.pending -= 1
                owned.fail(unavailable)
                if isinstance(what, _Step):
                    what.settle(unavailable)
            return
        for entry, answer in zip(batch, answers, strict=True):
            owned, index, what = entry
            owned.pending -= 1
            if owned.stalled is not None or isinstance(answer, _REDIRECTED):
                self._writers.stall(owned, entry)
                stalled.append(owned)
                continue
            if owned.failure is not None or isinstance(what, (_Nudge, _Gone)):
                if isinstance(what, _Step):
                    what.settle()
                continue
            if isinstance(what, _End) and answer == 0:  # a reaper ended it, or Redis lost it
                owned.fail(StreamLost(f"{owned.stream_id} was ended by another process"))
                self._writers.gone(owned)
                what.settle()
                continue
            if isinstance(answer, Exception) or (answer is None and isinstance(what, bytes)):
                lost = isinstance(answer, ResponseError) and isinstance(what, bytes)
                owned.fail(StreamLost(f"{owned.stream_id} was ended by another process")
                           if lost else StoreUnavailable(f"redis: {answer}")
                           if isinstance(answer, Exception) else
                           StreamLost(f"{owned.stream_id} is no longer in redis"))
                if answer is None:
                    self._writers.gone(owned)
                if isinstance(what, _Step):
                    what.settle(None if lost or answer is None else owned.failure)
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
        for owned in stalled:
            self._writers.retry_when_landed(owned)


_REDIRECTED: tuple[type[Exception], ...] = ()
with contextlib.suppress(NameError):
    _REDIRECTED = (MovedError, AskError, TryAgainError)


class Writers:
    """The process's writers, one per master (one on a single Redis), and the routing of
    each stream's entries to the writer of its slot's master."""

    def __init__(self, shards: Shards, prefix: str, token: str,
                 batch_interval: float = BATCH_INTERVAL) -> None:
        self._shards = shards
        self.prefix = prefix
        self.token = token
        self.batch_interval = batch_interval
        self.publish = "SPUBLISH" if shards.cluster else "PUBLISH"
        self._writers: dict[str, LogWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retrying: set[Owned] = set()
        self._closing = False

    def _writer(self, owned: Owned) -> LogWriter:
        if owned.pending and owned.writer is not None:
            return owned.writer  # earlier entries are on their way there: keep the order
        address = self._shards.address_of(owned.keys.log)
        writer = self._writers.get(address)
        if writer is None:
            writer = self._writers[address] = LogWriter(self, self._shards.client(address))
            writer.start()
        return writer

    def _put(self, entry: Entry) -> None:
        owned = entry[0]
        if owned.stalled is not None:
            owned.stalled.append(entry)
            return
        self._writer(owned).put(entry)

    async def create(self, owned: Owned) -> None:
        """Register the stream as this process's, and wait until Redis has it."""
        create = _Create(owned.owner)
        self._put((owned, 0, create))
        await create.done

    def frame(self, owned: Owned, frame: bytes) -> None:
        """Queue the stream's next frame; its index is fixed now."""
        frames = owned.frames
        self._put((owned, len(frames), frame))
        frames.append(frame)

    def nudge(self, owned: Owned) -> None:
        """Other processes follow the stream from now on: tell them where its log is."""
        self._put((owned, len(owned.frames), _Nudge("")))

    def gone(self, owned: Owned) -> None:
        """Redis lost the stream (or a reaper ended it, and published its end already):
        its followers elsewhere hear of it, whether or not the owner knew of them."""
        self._put((owned, len(owned.frames), _Gone("")))

    async def room(self, owned: Owned) -> None:
        if owned.writer is not None:
            await owned.writer.room()

    async def end(self, owned: Owned, reason: str, keep_ms: int) -> None:
        """Queue the stream's end after its frames, and wait until Redis has it."""
        end = _End(f"{reason}:{keep_ms}")
        self._put((owned, len(owned.frames), end))
        await end.done

    def stall(self, owned: Owned, entry: Entry) -> None:
        if owned.stalled is None:
            owned.stalled = []
            owned.stalled_since = asyncio.get_running_loop().time()
        owned.stalled.append(entry)

    def retry_when_landed(self, owned: Owned) -> None:
        """Once nothing of the stream is in flight, its waiting entries go, in order, to
        whichever master serves its slot then."""
        if owned.pending or owned.stalled is None or owned in self._retrying:
            return
        self._retrying.add(owned)
        task = asyncio.create_task(self._retry(owned), name="redis writer redirect")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, owned: Owned) -> None:
        try:
            await asyncio.sleep(MIGRATING_PAUSE)
            with contextlib.suppress(Exception):
                await self._shards.refresh()
        finally:
            self._retrying.discard(owned)
        stalled, owned.stalled = owned.stalled or [], None
        if owned.pending:  # cannot happen: nothing was sent while stalled
            owned.stalled = stalled
            return
        stalled.sort(key=_order)
        waited = asyncio.get_running_loop().time() - owned.stalled_since
        if waited > COMMAND_TIMEOUT or self._closing:
            failure = StoreUnavailable(f"redis: the slot of {owned.stream_id} did not settle")
            owned.fail(failure)
            for _, _, what in stalled:
                if isinstance(what, _Step):
                    what.settle(failure)
            return
        since = owned.stalled_since
        for entry in stalled:
            self._put(entry)
        if owned.stalled is not None:  # stalled again at once (cannot be: nothing sent)
            owned.stalled_since = since

    def lost_master(self) -> None:
        """A writer's connection broke: on a cluster, the map may have changed."""
        if self._shards.cluster and not self._closing:
            task = asyncio.ensure_future(self._refresh())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refresh(self) -> None:
        with contextlib.suppress(Exception):
            await self._shards.refresh()

    def forget(self, addresses: set[str]) -> None:
        """Masters that are masters no more: their writers stop."""
        for address in addresses:
            writer = self._writers.pop(address, None)
            if writer is not None:
                task = asyncio.ensure_future(writer.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        writers, self._writers = list(self._writers.values()), {}
        await asyncio.gather(*(w.close() for w in writers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
