"""RedisStore: the stream store contract on Redis, so that every process on every host
sees every stream. The pieces, each in its module:

    shards.py     where each key lives: one Redis, or the masters of a cluster
    log.py        the owner's batched writers, one per master: one round trip per batch
    live.py       the readers, one per master: new frames of followed streams, control
    presence.py   who has subscribers where
    liveness.py   the lease thread, and burying dead processes
    names.py      names clients give streams (bind), with their streams' lifetimes
    keyspace.py   key names, and the hash-tag rule that lets a cluster hold them
    scripts.py    the Lua scripts

This process's own subscribers of a stream it generates read its frames from the owner's
copy and follow it straight from the writer, each frame once Redis has confirmed it, with
no round trip of their own; subscribers of a stream generated elsewhere read the log and
follow through the reader. Either way a frame is handed once to the stream's one listener (the
fan-out), however many subscribers it has here. On a Redis Cluster (`redis+cluster://`)
each step touches one slot, so every master carries its share of the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

from ...errors import StoreUnavailable, StreamLost
from ..base import Batch, Cancel, Signal, StreamListener
from ..retention import Retention, kept_size
from .connection import HEALTH_TIMEOUT, RedisError, redacted_url, unavailable
from .entries import Owned
from .keyspace import ProcessKeys, StreamKeys, check_prefix
from .liveness import PROCESS_LEASE, Beat, LeaseThread
from .log import BATCH_INTERVAL, RUNNING_TTL_MS, batch_of
from .names import NamedStreams, Names
from .owns import OwnList
from .presence import Presence
from .readers import Readers
from .scripts import CANCEL, FORGET, READ
from .shards import Shards, script
from .writers import Writers

log = logging.getLogger("sseserver.redis")

# Running streams' keys are refreshed this often (they expire after RUNNING_TTL_MS).
REFRESH_EVERY: Final = 15.0
# A finished stream stays at least this long, however short the resume window, so a
# reader that just saw its end can still read its last frames.
MIN_KEEP: Final = 0.25
# Frames per read; a longer backlog takes several reads.
READ_COUNT: Final = 1024
# open() waits this long for the reader before starting degraded.
OPEN_TIMEOUT: Final = 2.0


class RedisStore(NamedStreams):
    backend = "redis"

    def __init__(self, url: str, *, resume_window: float, prefix: str = "sseserver:",
                 resume_max_bytes: int | None = None,
                 batch_interval: float = BATCH_INTERVAL) -> None:
        self._token = secrets.token_hex(8)
        self._url = url
        self._shown_url = redacted_url(url)
        self._prefix = check_prefix(prefix)
        self._keep_ms = _keep_ms(resume_window)  # for the streams of dead processes
        self._shards = Shards(url, self._token)
        self._read_script = script(READ)
        self._cancel_script = script(CANCEL)
        self._forget_script = script(FORGET)
        self._process_keys = ProcessKeys(prefix, self._token)
        self._own_list = OwnList(self._shards, self._process_keys.owns)
        self._owned: dict[str, Owned] = {}
        # Streams this process generated that ended well, kept for its own readers while
        # they stay in Redis: a reader here never waits on Redis for a stream made here.
        self._finished: dict[str, tuple[Owned, asyncio.TimerHandle]] = {}
        self._unfinished: dict[str, tuple[Owned, str, int]] = {}  # ends to write again
        self._writer = Writers(self._shards, prefix, self._token, batch_interval)
        self._presence = Presence(self._shards, prefix, self._token)
        self._names = Names(self._shards, prefix, RUNNING_TTL_MS)
        self._reader = Readers(self._shards, url, self._token, prefix,
                               self._process_keys.lease, self._process_keys.control,
                               self._on_control, self._reconcile, self._read_range)
        if self._shards.cluster:
            self._shards.on_change(self._writer.forget)
        self._retention = Retention(resume_max_bytes)
        self._lease: LeaseThread | None = None
        self._first_beat = True
        self._last_beat: Beat | None = None
        self._dead: tuple[str, ...] = ()
        self._upkeep: asyncio.Task[None] | None = None
        self._refreshed = time.monotonic()
        self._background: set[asyncio.Task[None]] = set()

    # -- lifetime -----------------------------------------------------------------

    async def open(self) -> None:
        self._reader.start()
        self._lease = LeaseThread(self._url, self._token, self._prefix, self._keep_ms,
                                  self._on_beat)
        self._lease.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPEN_TIMEOUT):
                await self._reader.tried.wait()
        if not self._reader.connected:
            log.error("redis at %s is unreachable; starting degraded", self._shown_url)
        log.info("stream store: redis at %s (process token %s)", self._shown_url, self._token)

    def _serving(self) -> bool:
        """The reader is connected (control messages reach us, followers are fed) and the
        lease thread reaches Redis (so this process is not taken for dead)."""
        beat = self._last_beat
        return self._reader.connected and (beat is None or beat.reached)

    async def healthy(self) -> bool:
        """Serving, and Redis answers a command now."""
        if not self._serving():
            return False
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self._shards.ping()
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        if self._lease is not None:
            await self._lease.stop()
        for task in (self._upkeep, *self._background):
            if task is not None:
                task.cancel()
        await self._writer.close()
        await self._own_list.close()
        await self._reader.close()
        await self._presence.close()
        if self._lease is not None:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    await self._lease.retire()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("redis: could not retire process %s: %s", self._token, exc)
        self._owned.clear()
        for _, expiry in self._finished.values():
            expiry.cancel()
        self._finished.clear()
        await self._shards.aclose()

    # -- the owner's side ---------------------------------------------------------

    async def create(self, stream_id: str, owner: str = "") -> None:
        if not self._serving():
            raise StoreUnavailable("redis: not connected")
        owned = Owned(self._prefix, stream_id, owner)
        async with unavailable():
            await asyncio.gather(self._writer.create(owned), self._own_list.add(stream_id))
        self._owned[stream_id] = owned

    def watch(self, stream_id: str, on_signal: Callable[[Signal], None]) -> None:
        self._owned[stream_id].on_signal = on_signal

    async def append(self, stream_id: str, frame: bytes) -> None:
        owned = self._owned[stream_id]
        if owned.failure is not None:
            raise owned.failure
        self._writer.frame(owned, frame)
        await self._writer.room(owned)

    async def finish(self, stream_id: str, keep_for: float) -> None:
        await self._names.ended(stream_id, _keep_ms(keep_for))
        owned = self._owned[stream_id]
        owned.on_signal = None
        if isinstance(owned.failure, StreamLost):
            del self._owned[stream_id]
            return  # its end was written by whoever took it
        reason = "lost" if owned.failure is not None else "done"
        keep_ms = _keep_ms(keep_for)
        try:
            await self._writer.end(owned, reason, keep_ms)
        except StoreUnavailable:
            self._unfinished[stream_id] = (owned, reason, keep_ms)  # the upkeep ends it
            raise
        finally:
            del self._owned[stream_id]
        self._own_list.remove(stream_id)  # no longer among what a survivor would bury
        if owned.failure is None:
            keep_for = keep_ms / 1000
            expiry = asyncio.get_running_loop().call_later(
                keep_for, self._finished.pop, stream_id, None)
            self._finished[stream_id] = (owned, expiry)
        self._retain(stream_id, kept_size(owned.frames), keep_ms / 1000)

    # -- everyone's side ----------------------------------------------------------

    async def owner(self, stream_id: str) -> str | None:
        owned = self._owned.get(stream_id)
        if owned is None:
            finished = self._finished.get(stream_id)
            owned = finished[0] if finished is not None else None
        if owned is not None:
            return owned.owner
        keys = StreamKeys(self._prefix, stream_id)
        async with unavailable():
            process, user = await self._shards.run(
                keys.meta, lambda client: client.hmget(keys.meta, "owner", "user"))
        if process is None:
            return None
        return user.decode() if user is not None else ""

    @property
    def shards(self) -> Shards:
        """Where each key lives, for what the fleet shares besides streams (quotas.py)."""
        return self._shards

    def dead_processes(self) -> tuple[str, ...]:
        """Tokens of processes buried lately, as the last beat read them (quotas.py)."""
        return self._dead

    @property
    def token(self) -> str:
        """This process's token: its lease is `<prefix>proc:<token>` (liveness.py)."""
        return self._token

    @property
    def prefix(self) -> str:
        return self._prefix

    async def read(self, stream_id: str, start: int, wait: float) -> Batch | None:
        batch = self._read_owned(stream_id, start) or await self._read_range(stream_id, start)
        if batch is None or batch.frames or batch.ended or wait <= 0:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (remaining := deadline - loop.time()) > 0:
            owned = self._owned.get(stream_id)
            if owned is not None and owned.failure is None and not owned.ended:
                waiter = loop.create_future()
                owned.waiters.append(waiter)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await waiter
            else:
                await self._reader.wait(stream_id, remaining)
            batch = self._read_owned(stream_id, start) or await self._read_range(
                stream_id, start
            )
            if batch is None or batch.frames or batch.ended:
                return batch
        return Batch([], False, held=batch.held)

    def _read_owned(self, stream_id: str, start: int) -> Batch | None:
        """A stream this process generates or generated, from its own copy of what Redis
        confirmed; None when it is not one, or it failed (then the log says how it
        ended)."""
        owned = self._owned.get(stream_id)
        if owned is None:
            finished = self._finished.get(stream_id)
            if finished is None:
                return None
            owned = finished[0]
        if owned.failure is not None:
            return None
        return Batch(owned.frames[start:owned.confirmed], owned.ended, held=owned.confirmed)

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        owned = self._owned.get(stream_id)
        if owned is None:
            return self._reader.listen(stream_id, start, listener)
        if (owned.failure is not None or owned.ended or owned.listener is not None
                or start != owned.confirmed):
            return False
        owned.listener = listener
        return True

    def unlisten(self, stream_id: str) -> None:
        owned = self._owned.get(stream_id)
        if owned is not None:
            owned.listener = None
        else:
            self._reader.unlisten(stream_id)

    async def join(self, stream_id: str) -> None:
        owned = self._owned.get(stream_id)
        if owned is None:
            await self._presence.join(stream_id)
            return
        owned.local += 1
        owned.presence_changed()

    async def leave(self, stream_id: str) -> None:
        owned = self._owned.get(stream_id)
        if owned is None or not owned.local:
            await self._presence.leave(stream_id)
            return
        owned.local -= 1
        owned.presence_changed()

    async def request_cancel(self, stream_id: str) -> Cancel:
        owned = self._owned.get(stream_id)
        if owned is not None and owned.on_signal is not None:
            owned.apply(b"C")
            return Cancel.CANCELLED
        keys = StreamKeys(self._prefix, stream_id)
        async with unavailable():
            found = await self._shards.script(self._cancel_script, [keys.meta],
                                              [stream_id, self._prefix + "ctl:"])
        return {0: Cancel.UNKNOWN, 1: Cancel.CANCELLED}.get(int(found), Cancel.ENDED)

    async def _read_range(self, stream_id: str, start: int) -> Batch | None:
        keys = StreamKeys(self._prefix, stream_id)
        async with unavailable():
            reply = await self._shards.script(self._read_script, [keys.log, keys.meta],
                                              [start + 1, READ_COUNT])
        if reply is None:
            return None
        ended, entries, length = reply
        # Event ids given out: every entry but a `done` end (a `lost` end is an event).
        held = int(length) - (ended in (b"done", "done"))
        return batch_of(entries, ended_before=bool(ended), held=held)

    # -- control and liveness -----------------------------------------------------

    def _on_control(self, data: bytes) -> None:
        owned = self._owned.get(data[1:].decode())
        if owned is not None:
            self._apply(owned, data[:1])

    def _apply(self, owned: Owned, kind: bytes) -> None:
        if owned.apply(kind) and owned.failure is None and not owned.ended:
            self._writer.nudge(owned)  # followers elsewhere: the log is this far

    async def _reconcile(self) -> None:
        """Signals published while the reader was not listening, read from Redis."""
        owned = list(self._owned.values())
        if not owned:
            return
        calls: list[tuple[str, Any]] = []
        for stream in owned:
            meta, subs = stream.keys.meta, stream.keys.subs
            calls.append((meta, lambda pipe, meta=meta: pipe.hget(meta, "cancel")))
            calls.append((subs, lambda pipe, subs=subs: pipe.scard(subs)))
        async with unavailable():
            states = await self._shards.pipeline(calls)
        for stream, cancel, subscribers in zip(owned, states[::2], states[1::2], strict=True):
            if cancel:
                stream.apply(b"C")
            self._apply(stream, b"B" if subscribers else b"I")

    def _on_beat(self, beat: Beat) -> None:
        """From the lease thread, on the event loop."""
        last, self._last_beat = self._last_beat, beat
        first, self._first_beat = self._first_beat, False
        if not beat.reached:
            if last is None or last.reached:
                log.error("redis at %s is unreachable: %s", self._shown_url, beat.error)
            return
        if last is not None and not last.reached:
            log.warning("redis at %s is reachable again", self._shown_url)
        self._dead = beat.dead
        if beat.buried:
            log.warning("redis: %d dead sseserver process(es) buried", beat.buried)
        if not first and not beat.listed:
            # Taken for dead while we were stopped (or Redis lost its data).
            log.warning("redis: process %s was taken for dead (paused past its %gs lease, "
                        "or Redis lost its data); stopping the streams it lost",
                        self._token, PROCESS_LEASE)
            self._presence.forget()
            self._spawn(self._stop_lost_streams())
        elif not first and not beat.held:
            log.warning("redis: lease of process %s had lapsed; nobody took it", self._token)
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.create_task(self._do_upkeep(), name="redis upkeep")

    async def _stop_lost_streams(self) -> None:
        owned = list(self._owned.values())
        if not owned:
            return
        calls: list[tuple[str, Any]] = []
        for stream in owned:
            meta = stream.keys.meta
            calls.append((meta, lambda pipe, meta=meta: pipe.hmget(meta, "owner", "ended")))
        async with unavailable():
            states = await self._shards.pipeline(calls)
        for stream, (owner, ended) in zip(owned, states, strict=True):
            if owner != self._token.encode() or ended is not None:
                stream.fail(StreamLost(f"{stream.stream_id} was ended by another process"))
                stream.signal(Signal.LOST)

    async def _do_upkeep(self) -> None:
        """What could not be done at the time: presence, ends, key lifetimes."""
        try:
            await self._presence.catch_up()
            for stream_id, (owned, reason, keep_ms) in list(self._unfinished.items()):
                await self._writer.end(owned, reason, keep_ms)
                del self._unfinished[stream_id]
            if time.monotonic() - self._refreshed >= REFRESH_EVERY:
                await self._refresh_running()
                self._refreshed = time.monotonic()
        except StoreUnavailable as exc:
            log.debug("redis upkeep deferred: %s", exc)

    async def _refresh_running(self) -> None:
        """Give running streams' keys their running time again; those given it less than
        REFRESH_EVERY ago (most of them, at Claude's pace) keep it until the next time."""
        now = time.monotonic()
        due = [owned for owned in self._owned.values() if now - owned.kept_at >= REFRESH_EVERY]
        if not due:
            return
        calls: list[tuple[str, Any]] = [
            (key, lambda pipe, key=key: pipe.pexpire(key, RUNNING_TTL_MS))
            for owned in due for key in (owned.keys.log, owned.keys.meta, owned.keys.subs)]
        async with unavailable():
            await self._shards.pipeline(calls + self._names.refresh())
        for owned in due:
            owned.kept_at = now

    def _retain(self, stream_id: str, size: int, keep_for: float) -> None:
        freed = self._retention.add(stream_id, size, keep_for)
        for stream in freed:
            finished = self._finished.pop(stream, None)
            if finished is not None:
                finished[1].cancel()
        if freed:
            self._spawn(self._forget(freed))

    async def _forget(self, stream_ids: list[str]) -> None:
        try:
            async with unavailable():
                await asyncio.gather(*(
                    self._shards.script(self._forget_script, [k.log, k.meta, k.subs], [])
                    for k in (StreamKeys(self._prefix, sid) for sid in stream_ids)))
        except StoreUnavailable as exc:
            log.debug("redis: could not free %d finished streams: %s", len(stream_ids), exc)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _keep_ms(keep_for: float) -> int:
    return round(max(keep_for, MIN_KEEP) * 1000)
