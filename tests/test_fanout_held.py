"""The fan-out's held frames (fanout.py, `StreamFanout`): the frames a stream gets within
one step of the event loop go out together in one write right after that step, and never
twice or out of order, whoever joins, falls behind or ends meanwhile."""

from __future__ import annotations

import asyncio

from sseserver.fanout import FOLLOW_HIGH_WATER, http_chunk
from sseserver.store.memory import MemoryStore

from .test_fanout import FakeTransport, _fanout, _follower


async def test_frames_of_one_step_share_one_write_right_after_it() -> None:
    store = MemoryStore()
    fanout = _fanout(store=store)
    await store.create("s")
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
    store = MemoryStore()
    fanout = _fanout(store=store)
    await store.create("s")
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
    store = MemoryStore()
    fanout = _fanout(store=store)
    await store.create("s")
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
    store = MemoryStore()
    fanout = _fanout(store=store)
    await store.create("s")
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
