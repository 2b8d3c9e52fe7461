"""The StreamStore contract (store/base.py), one suite run against every backend: the
in-memory store and the Redis store, on a real redis-server and on a real Redis Cluster
of 3 masters (tests/support/redis_cluster.py)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sseserver.store.base import Batch, Cancel, Signal, StreamStore
from sseserver.store.memory import MemoryStore

from .support.waiting import until

# How much earlier than asked a timer may seem to fire, measured on time.monotonic():
# Redis counts expiry in whole milliseconds on a clock of its own.
CLOCK_SLACK = 0.002


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StreamStore]:
    instance: StreamStore
    if request.param == "memory":
        instance = MemoryStore()
    else:
        from sseserver.store.redis import RedisStore

        url = request.getfixturevalue(
            "redis_url" if request.param == "redis" else "redis_cluster_url")
        instance = RedisStore(url, resume_window=1, prefix=f"t{secrets.token_hex(4)}:")
    await instance.open()
    yield instance
    await instance.close()


async def _read_all(store: StreamStore, stream_id: str, start: int = 0) -> Batch:
    """Every frame from `start` to the end, however many batches the backend uses."""
    frames: list[bytes] = []
    while True:
        batch = await store.read(stream_id, start + len(frames), wait=0)
        assert batch is not None
        frames += batch.frames
        if batch.ended:
            return Batch(frames, True, batch.lost)
        assert batch.frames, "a stream that is not ended returned nothing without waiting"


async def test_read_replays_then_waits_for_new_frames(store: StreamStore) -> None:
    await store.create("s")
    await store.append("s", b"a")
    await store.append("s", b"b")
    batch = await store.read("s", 1, wait=1)
    assert batch is not None
    assert (batch.frames, batch.ended) == ([b"b"], False)
    reader = asyncio.create_task(store.read("s", 2, wait=5))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await store.append("s", b"c")
    batch = await reader
    assert batch is not None
    assert batch.frames == [b"c"]


async def test_a_read_that_waits_in_vain_returns_empty_after_wait(store: StreamStore) -> None:
    await store.create("s")
    started = time.monotonic()
    batch = await store.read("s", 0, wait=0.1)
    assert batch is not None
    assert (batch.frames, batch.ended) == ([], False)
    assert 0.09 <= time.monotonic() - started < 0.5


async def test_one_reader_timing_out_does_not_disturb_another(store: StreamStore) -> None:
    await store.create("s")
    patient = asyncio.create_task(store.read("s", 0, wait=5))
    assert await store.read("s", 0, wait=0.05) is not None  # times out first
    await store.append("s", b"x")
    batch = await patient
    assert batch is not None
    assert batch.frames == [b"x"]


async def test_finish_ends_readers_and_frees_after_keep_for(store: StreamStore) -> None:
    await store.create("s")
    reader = asyncio.create_task(store.read("s", 0, wait=5))
    await asyncio.sleep(0.02)
    await store.append("s", b"last")
    finishing = time.monotonic()
    await store.finish("s", keep_for=0.3)
    batch = await reader
    assert batch is not None
    assert batch.frames == [b"last"]
    for start in (1, 1000):  # at or past the end: ended, no waiting
        batch = await store.read("s", start, wait=5)
        assert batch is not None
        assert (batch.frames, batch.ended, batch.lost) == ([], True, False)
    assert await store.request_cancel("s") is Cancel.ENDED  # held, nothing to cancel
    await until(_freed(store, "s"), what="the stream freed after keep_for")
    # A busy machine makes the freeing late, never early: it never comes before keep_for.
    assert time.monotonic() - finishing >= 0.3 - CLOCK_SLACK
    assert await store.request_cancel("s") is Cancel.UNKNOWN


def _freed(store: StreamStore, stream_id: str) -> Callable[[], Awaitable[bool]]:
    """Whether the store has let the stream go (a read finds nothing)."""
    async def check() -> bool:
        return await store.read(stream_id, 0, wait=0) is None
    return check


async def test_a_long_backlog_reads_exactly_in_order(store: StreamStore) -> None:
    frames = [b"frame %d" % i for i in range(2500)]
    await store.create("s")
    for frame in frames:
        await store.append("s", frame)
    await store.finish("s", keep_for=5)
    assert (await _read_all(store, "s")).frames == frames
    assert (await _read_all(store, "s", 2417)).frames == frames[2417:]


class _Watcher:
    """An owner's signal handler that records what it was called with."""

    def __init__(self) -> None:
        self.got: list[Signal] = []
        self._called = asyncio.Event()

    def __call__(self, signal: Signal) -> None:
        self.got.append(signal)
        self._called.set()

    async def signals(self, count: int) -> list[Signal]:
        """What it got, once there are `count` (Redis delivers them later), and no more."""
        async with asyncio.timeout(2):
            while len(self.got) < count:
                self._called.clear()
                await self._called.wait()
        await asyncio.sleep(0.05)
        return self.got


async def test_presence_and_cancel_signals_in_order(store: StreamStore) -> None:
    await store.create("s")
    watcher = _Watcher()
    store.watch("s", watcher)
    await store.join("s")
    await store.join("s")
    await store.leave("s")
    await store.leave("s")
    assert await store.request_cancel("s") is Cancel.CANCELLED
    assert await watcher.signals(3) == [Signal.BUSY, Signal.IDLE, Signal.CANCEL]


async def test_a_subscriber_coming_back_is_busy_again(store: StreamStore) -> None:
    await store.create("s")
    watcher = _Watcher()
    store.watch("s", watcher)
    for _ in range(2):
        await store.join("s")
        await store.leave("s")
    assert await watcher.signals(4) == [Signal.BUSY, Signal.IDLE, Signal.BUSY, Signal.IDLE]


async def test_no_signal_reaches_the_owner_after_finish(store: StreamStore) -> None:
    await store.create("s")
    watcher = _Watcher()
    store.watch("s", watcher)
    await store.append("s", b"a")
    await store.finish("s", keep_for=5)
    await store.join("s")
    await store.leave("s")
    assert await store.request_cancel("s") is Cancel.ENDED
    assert await watcher.signals(0) == []


@pytest.mark.parametrize("stream_id", ["gone", "a-b_c"])
async def test_unknown_streams_read_as_none(store: StreamStore, stream_id: str) -> None:
    assert await store.read(stream_id, 0, wait=1) is None
    assert await store.request_cancel(stream_id) is Cancel.UNKNOWN
    await store.join(stream_id)  # harmless
    await store.leave(stream_id)
    await store.leave(stream_id)  # an unmatched leave too


async def test_healthy_and_named(store: StreamStore) -> None:
    assert await store.healthy()
    assert store.backend in ("memory", "redis")


async def test_memory_store_counts_its_subscribers() -> None:
    store = MemoryStore()
    await store.create("s")
    await store.join("s")
    assert store.subscriber_count() == 1
    await store.leave("s")
    assert store.subscriber_count() == 0


class _Listener:
    """A stream listener that records what it is handed."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int]] = []
        self.ended = False
        self.final = False
        self._changed = asyncio.Event()

    def frame(self, data: bytes, index: int) -> None:
        self.frames.append((data, index))
        self._changed.set()

    def end(self, final: bool) -> None:
        self.ended = True
        self.final = final
        self._changed.set()

    async def until(self, frames: int, *, ended: bool = False) -> None:
        """Wait (Redis hands frames over once they are confirmed) for this much."""
        async with asyncio.timeout(3):
            while len(self.frames) < frames or (ended and not self.ended):
                self._changed.clear()
                await self._changed.wait()


async def test_a_listener_at_the_end_gets_each_new_frame_with_its_index(
    store: StreamStore,
) -> None:
    await store.create("s")
    await store.append("s", b"a")
    assert (await _read_all_now(store, "s")) == [b"a"]
    listener = _Listener()
    assert store.listen("s", 1, listener)
    await store.append("s", b"b")
    await store.append("s", b"c")
    await listener.until(2)
    assert listener.frames == [(b"b", 1), (b"c", 2)]
    await store.finish("s", keep_for=5)
    await listener.until(2, ended=True)
    assert listener.frames == [(b"b", 1), (b"c", 2)]
    assert listener.final  # ended normally: nothing to read


async def test_no_listener_behind_the_end_and_none_kept_after_it(store: StreamStore) -> None:
    await store.create("s")
    await store.append("s", b"a")
    await _read_all_now(store, "s")
    assert not store.listen("s", 0, _Listener())  # behind: the subscriber reads first
    await store.finish("s", keep_for=5)
    late = _Listener()
    if store.listen("s", 1, late):  # a store that cannot tell at once ends it soon
        await late.until(0, ended=True)
        assert late.frames == []


async def test_a_listener_in_another_process_catches_up_then_follows(
    some_redis_url: str,
) -> None:
    """Redis: a process that did not generate the stream gets it through its one reader,
    from the listener's position (read from the log) on, each frame once."""
    from sseserver.store.redis import RedisStore

    prefix = f"t{secrets.token_hex(4)}:"
    owner = RedisStore(some_redis_url, resume_window=1, prefix=prefix)
    other = RedisStore(some_redis_url, resume_window=1, prefix=prefix)
    await owner.open()
    await other.open()
    try:
        await owner.create("s")
        for frame in (b"a", b"b", b"c"):
            await owner.append("s", frame)
        await _read_all_now(owner, "s")
        listener = _Listener()
        assert other.listen("s", 1, listener)  # behind: b and c come from the log
        await listener.until(2)
        for frame in (b"d", b"e"):
            await owner.append("s", frame)
        await owner.finish("s", keep_for=5)
        await listener.until(4, ended=True)
        assert listener.frames == [(b"b", 1), (b"c", 2), (b"d", 3), (b"e", 4)]
        assert listener.final
    finally:
        await other.close()
        await owner.close()


async def test_unlisten_stops_the_frames(store: StreamStore) -> None:
    await store.create("s")
    listener = _Listener()
    assert store.listen("s", 0, listener)
    store.unlisten("s")
    await store.append("s", b"a")
    assert (await _read_all_now(store, "s")) == [b"a"]
    assert listener.frames == []


async def _read_all_now(store: StreamStore, stream_id: str) -> list[bytes]:
    """The frames the store holds, once the last append is readable."""
    batch = await store.read(stream_id, 0, wait=1)
    assert batch is not None
    return batch.frames


async def test_a_name_points_at_its_stream_until_the_stream_is_freed(store: StreamStore) -> None:
    assert await store.bound("chat") is None
    await store.create("s")
    assert await store.bind("chat", "s") is None
    assert await store.bound("chat") == "s"
    await store.append("s", b"a")
    await store.finish("s", keep_for=0.3)
    assert await store.bound("chat") == "s"  # readable for the window, so named too
    await until(_freed(store, "s"), what="the stream freed after keep_for")
    assert await store.bound("chat") is None


async def test_binding_a_name_again_returns_the_stream_it_replaces(store: StreamStore) -> None:
    await store.create("old")
    await store.bind("chat", "old")
    await store.create("new")
    assert await store.bind("chat", "new") == "old"
    assert await store.bound("chat") == "new"
    # The replaced stream ending or being unbound leaves the newer binding alone.
    await store.finish("old", keep_for=0.1)
    await store.unbind("chat", "old")
    await until(_freed(store, "old"), what="the replaced stream freed")
    assert await store.bound("chat") == "new"
    await store.unbind("chat", "new")
    assert await store.bound("chat") is None


async def test_a_name_whose_stream_is_gone_is_not_returned(store: StreamStore) -> None:
    await store.create("a")
    await store.bind("chat", "a")
    await store.finish("a", keep_for=0.1)
    await until(_freed(store, "a"), what="the stream freed after keep_for")
    await store.create("b")
    assert await store.bind("chat", "b") is None  # "a" is no longer held
    assert await store.bound("chat") == "b"
    assert await store.bound("other") is None


async def test_a_read_says_how_many_events_the_stream_has(store: StreamStore) -> None:
    """Batch.held: what a subscriber checks a resume point against (a Last-Event-ID
    beyond it names an event the stream never had)."""
    await store.create("s")
    batch = await store.read("s", 0, wait=0)
    assert batch is not None
    assert (batch.frames, batch.held) == ([], 0)
    await store.append("s", b"a")
    await store.append("s", b"b")
    batch = await store.read("s", 1, wait=1)  # once stored (Redis confirms in batches)
    assert batch is not None
    assert (batch.frames, batch.held) == ([b"b"], 2)
    for start in (0, 1, 2, 7):
        batch = await store.read("s", start, wait=0)
        assert batch is not None
        assert (batch.frames, batch.ended, batch.held) == ([b"a", b"b"][start:], False, 2)
    reader = asyncio.create_task(store.read("s", 2, wait=5))
    await asyncio.sleep(0.05)
    await store.append("s", b"c")
    batch = await reader
    assert batch is not None
    assert (batch.frames, batch.held) == ([b"c"], 3)
    await store.finish("s", keep_for=5)
    for start in (0, 3, 9):
        batch = await store.read("s", start, wait=0)
        assert batch is not None
        assert (batch.ended, batch.lost, batch.held) == (True, False, 3)


async def test_a_lost_end_counts_as_an_event(some_redis_url: str) -> None:
    """A stream whose owner went away ends `lost`, reported as an error event with the
    index after the frames: that id was given out, so a resume from it is not beyond."""
    from sseserver.store.redis import RedisStore

    prefix = f"t{secrets.token_hex(4)}:"
    owner = RedisStore(some_redis_url, resume_window=5, prefix=prefix)
    reader = RedisStore(some_redis_url, resume_window=5, prefix=prefix)
    await owner.open()
    await reader.open()
    try:
        await owner.create("s")
        await owner.append("s", b"a")
        await owner.append("s", b"b")
        await owner.close()  # retires: its running streams end `lost`
        batch = await reader.read("s", 0, wait=0)
        assert batch is not None
        assert (batch.frames, batch.ended, batch.lost, batch.held) == ([b"a", b"b"], True, True, 3)
        batch = await reader.read("s", 3, wait=0)
        assert batch is not None
        assert (batch.frames, batch.ended, batch.held) == ([], True, 3)
    finally:
        await reader.close()


async def test_redis_keeps_a_finished_stream_at_least_its_minimum_keep_time(
    some_redis_url: str,
) -> None:
    """With `--resume-window 0` a finished stream still stays in Redis for MIN_KEEP, so a
    reader that just saw the end of its last batch can read its last frames (protocol.md,
    "Routes": at least 0.25 s with Redis)."""
    from sseserver.store.redis import RedisStore

    store = RedisStore(some_redis_url, resume_window=0, prefix=f"t{secrets.token_hex(4)}:")
    await store.open()
    try:
        await store.create("s")
        await store.append("s", b"last")
        finishing = time.monotonic()
        await store.finish("s", keep_for=0)
        batch = await store.read("s", 0, wait=0)
        assert batch is not None
        assert (batch.frames, batch.ended) == ([b"last"], True)
        await until(_freed(store, "s"), what="the stream freed after the minimum keep")
        kept = time.monotonic() - finishing
        print(f"a stream finished with keep_for=0 was kept {kept * 1000:.0f} ms")
        assert kept >= 0.25 - CLOCK_SLACK
    finally:
        await store.close()


async def test_a_busy_writers_batches_are_the_given_interval_apart(some_redis_url: str) -> None:
    """Redis: after a batch, the frames that follow wait for the interval, then go out
    together; they are readable only once Redis has them."""
    from sseserver.store.redis import RedisStore

    store = RedisStore(some_redis_url, resume_window=1, prefix=f"t{secrets.token_hex(4)}:",
                       batch_interval=1.0)
    await store.open()
    try:
        await store.create("s")
        await store.append("s", b"a")
        first = await store.read("s", 0, wait=3)
        assert first is not None
        assert first.frames == [b"a"]
        loop = asyncio.get_running_loop()
        sent = loop.time()
        for frame in (b"b", b"c"):
            await store.append("s", frame)
        await asyncio.sleep(0.3)
        early = await store.read("s", 1, wait=0)
        assert early is not None
        assert early.frames == []  # b and c wait for the interval
        later = await store.read("s", 1, wait=3)
        assert later is not None
        assert later.frames == [b"b", b"c"]
        assert loop.time() - sent >= 0.5
    finally:
        await store.close()
