"""The fan-out (fanout.py): followers, one chunk per frame for all of a stream's followers,
and the shared timer, on the in-memory store with transports we control. The frames a
stream gets within one step of the event loop go out together in one write right after
that step, and never twice or out of order, whoever joins, falls behind or ends meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses

from sseserver.config import Settings
from sseserver.fanout import FOLLOW_HIGH_WATER, PING_CHUNK, Fanout, Follower, http_chunk
from sseserver.metrics import Live, Metrics
from sseserver.store.memory import MemoryStore


class FakeTransport:
    """Records writes; `buffered` plays the socket's unsent bytes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def _follower(transport: FakeTransport) -> Follower:
    return Follower(transport, Live())  # type: ignore[arg-type]


async def test_push_writes_and_counts_until_the_buffer_is_full() -> None:
    transport = FakeTransport()
    follower = _follower(transport)
    waiting = follower.follow_from(3)
    await asyncio.sleep(0)
    assert follower.push(b"chunk", 4, 3)
    assert (transport.writes, follower.next_index, follower.live.events_sent) == ([b"chunk"], 4, 1)
    assert follower.sent == 3  # the frame's bytes, for the access log
    assert not waiting.done()
    transport.buffered = FOLLOW_HIGH_WATER + 1
    assert not follower.push(b"more", 5, 2)  # behind now: it will catch up by reading
    await asyncio.wait_for(waiting, 1)
    assert (transport.writes, follower.next_index) == ([b"chunk"], 4)


async def test_end_wakes_the_follower() -> None:
    follower = _follower(FakeTransport())
    waiting = follower.follow_from(0)
    await asyncio.sleep(0)
    follower.end(True)
    assert follower.ended
    await asyncio.wait_for(waiting, 1)


def _fanout(heartbeat: float = 15, send_timeout: float = 30,
            store: MemoryStore | None = None) -> Fanout:
    settings = dataclasses.replace(Settings(), heartbeat=heartbeat, send_timeout=send_timeout)
    return Fanout(store or MemoryStore(), settings, Metrics())


async def _stream() -> tuple[MemoryStore, Fanout]:
    """A memory store holding stream "s", and a fan-out over it."""
    store = MemoryStore()
    fanout = _fanout(store=store)
    await store.create("s")
    return store, fanout


def test_http_chunk_frames_bytes_as_one_chunk() -> None:
    assert http_chunk(b": ping\n\n") == b"8\r\n: ping\n\n\r\n"
    assert http_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"


async def test_each_frame_is_one_chunk_written_to_every_follower_of_its_stream() -> None:
    store, fanout = await _stream()
    await store.create("other")
    await store.append("s", b"zero")
    first, second, elsewhere = FakeTransport(), FakeTransport(), FakeTransport()
    assert not fanout.follow("s", 0, _follower(first))  # behind: it must read frame 0
    assert fanout.follow("s", 1, _follower(first))
    assert not fanout.follow("s", 0, _follower(second))
    assert fanout.follow("s", 1, _follower(second))
    assert fanout.follow("other", 0, _follower(elsewhere))
    await store.append("s", b"one")
    await asyncio.sleep(0)  # written right after the step that appended it
    assert first.writes == second.writes == [http_chunk(b"one")]
    assert first.writes[0] is second.writes[0]  # framed once for both
    assert elsewhere.writes == []


async def test_a_follower_that_falls_behind_is_let_go_and_the_stream_unlistened() -> None:
    store, fanout = await _stream()
    transport = FakeTransport()
    follower = _follower(transport)
    waiting = follower.follow_from(0)
    assert fanout.follow("s", 0, follower)
    transport.buffered = FOLLOW_HIGH_WATER + 1
    await store.append("s", b"a")
    await asyncio.wait_for(waiting, 1)
    assert (transport.writes, follower.next_index) == ([], 0)  # it reads frame 0 itself
    assert fanout.follow("s", 1, _follower(FakeTransport()))  # a fresh listener is taken


async def test_the_end_of_a_stream_reaches_every_follower() -> None:
    store, fanout = await _stream()
    followers = [_follower(FakeTransport()) for _ in range(3)]
    waits = [f.follow_from(0) for f in followers]
    assert all(fanout.follow("s", 0, f) for f in followers)
    await store.finish("s", keep_for=1)
    await asyncio.wait_for(asyncio.gather(*waits), 1)
    assert not fanout.follow("s", 0, _follower(FakeTransport()))  # ended: read instead


async def test_unfollowing_the_last_follower_stops_the_pushes() -> None:
    store, fanout = await _stream()
    transport = FakeTransport()
    follower = _follower(transport)
    assert fanout.follow("s", 0, follower)
    fanout.unfollow("s", follower)
    await store.append("s", b"a")
    assert transport.writes == []


async def _followed(fanout: Fanout, store: MemoryStore, transport: FakeTransport) -> Follower:
    await store.create("s")
    follower = _follower(transport)
    assert fanout.follow("s", 0, follower)
    return follower


async def test_a_silent_follower_is_pinged_after_the_heartbeat() -> None:
    store = MemoryStore()
    followers = _fanout(heartbeat=1, send_timeout=30, store=store)
    assert followers.tick == 0.25
    transport = FakeTransport()
    follower = await _followed(followers, store, transport)
    follower.wrote = True
    followers.scan()  # a frame went out during this tick: no ping
    for _ in range(3):
        followers.scan()
    assert transport.writes == []
    followers.scan()  # the fourth silent tick: one heartbeat without a frame
    assert transport.writes == [PING_CHUNK]


async def test_a_follower_blocked_for_the_send_timeout_is_dropped() -> None:
    store = MemoryStore()
    followers = _fanout(heartbeat=15, send_timeout=2, store=store)
    transport = FakeTransport()
    follower = await _followed(followers, store, transport)
    transport.buffered = FOLLOW_HIGH_WATER + 1
    for _ in range(3):
        followers.scan()
    assert not transport.aborted
    transport.buffered = 0  # drained in time: the count starts again
    followers.scan()
    transport.buffered = FOLLOW_HIGH_WATER + 1
    for _ in range(3):
        followers.scan()
    assert not transport.aborted
    followers.scan()
    assert transport.aborted
    assert follower.slow
    assert transport.writes == []  # never pinged while blocked


# held frames: one write per step


async def test_frames_of_one_step_share_one_write_right_after_it() -> None:
    store, fanout = await _stream()
    transport = FakeTransport()
    follower = _follower(transport)
    assert fanout.follow("s", 0, follower)
    for frame in (b"a", b"b", b"c"):
        await store.append("s", frame)  # never suspends: one step
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [http_chunk(b"abc")]
    assert (follower.next_index, follower.live.events_sent) == (3, 3)
    await store.append("s", b"d")  # the next step's
    await asyncio.sleep(0)
    assert transport.writes == [http_chunk(b"abc"), http_chunk(b"d")]


async def test_a_follower_joining_mid_step_gets_each_frame_once() -> None:
    store, fanout = await _stream()
    early, late = FakeTransport(), FakeTransport()
    assert fanout.follow("s", 0, _follower(early))
    for frame in (b"a", b"b"):
        await store.append("s", frame)
    # `late` has read frames 0-1 from the store: the held ones are not pushed to it.
    assert fanout.follow("s", 2, _follower(late))
    assert early.writes == [http_chunk(b"ab")]
    await store.append("s", b"c")
    await asyncio.sleep(0)
    assert early.writes[1:] == late.writes == [http_chunk(b"c")]


async def test_a_follower_that_falls_behind_mid_step_reads_the_held_frames() -> None:
    store, fanout = await _stream()
    transport = FakeTransport()
    follower = _follower(transport)
    waiting = follower.follow_from(0)
    assert fanout.follow("s", 0, follower)
    await store.append("s", b"a")
    await asyncio.sleep(0)
    await store.append("s", b"b")
    await store.append("s", b"c")
    transport.buffered = FOLLOW_HIGH_WATER + 1
    await asyncio.wait_for(waiting, 1)
    assert (transport.writes, follower.next_index) == ([http_chunk(b"a")], 1)
    batch = await store.read("s", follower.next_index, wait=0)  # as its handler does
    assert batch is not None
    assert batch.frames == [b"b", b"c"]
    # The stream was let go with its last follower; a newcomer at the end is taken.
    assert fanout.follow("s", 3, _follower(FakeTransport()))


async def test_the_end_of_a_stream_comes_after_its_held_frames() -> None:
    store, fanout = await _stream()
    transport = FakeTransport()
    follower = _follower(transport)
    waiting = follower.follow_from(0)
    assert fanout.follow("s", 0, follower)
    for frame in (b"a", b"b"):
        await store.append("s", frame)
    await store.finish("s", keep_for=1)
    assert transport.writes == [http_chunk(b"ab")]
    assert follower.next_index == 2
    await asyncio.wait_for(waiting, 1)
    assert follower.ended  # its handler returns without reading the store: it has it all
