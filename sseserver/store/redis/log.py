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
slot now (writers.py routes them; entries.py holds what they are). A master that fails
answers nothing: its streams fail (their end is `lost`).

The entries wait in memory, bounded in bytes (WRITE_BUFFER_BYTES): past it an append waits
for the writer to catch up. A batch that fails marks its streams (`Owned.failure`): their
next append raises, and their followers are let go to read the truth from the log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ...errors import StoreUnavailable, StreamLost
from ..base import Batch
from .entries import Create, End, Entry, Gone, Nudge, Owned, Step
from .resp import command, xadd
from .scripts import END

if TYPE_CHECKING:
    from .writers import Writers

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
            elif isinstance(what, Create):
                user = ("user", what.payload) if what.payload else ()
                add(command("HSET", keys.meta, "owner", self._token, *user))
                add(command("PEXPIRE", keys.meta, RUNNING_TTL_MS))
            elif isinstance(what, Nudge):
                add(command(publish, keys.channel, f"h{index}"))
            elif isinstance(what, Gone):
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
                if isinstance(what, Step):
                    what.settle(unavailable)
            return
        for entry, answer in zip(batch, answers, strict=True):
            owned, index, what = entry
            owned.pending -= 1
            if owned.stalled is not None or isinstance(answer, _REDIRECTED):
                self._writers.stall(owned, entry)
                stalled.append(owned)
                continue
            if owned.failure is not None or isinstance(what, (Nudge, Gone)):
                if isinstance(what, Step):
                    what.settle()
                continue
            if isinstance(what, End) and answer == 0:  # a reaper ended it, or Redis lost it
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
                if isinstance(what, Step):
                    what.settle(None if lost or answer is None else owned.failure)
                continue
            if isinstance(what, bytes):
                owned.confirmed = index + 1
                if owned.listener is not None:
                    owned.listener.frame(what, index)
                if owned.waiters:
                    owned.wake()
            elif isinstance(what, End):
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
