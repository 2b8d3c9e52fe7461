"""The in-memory stream store against its contract (streams/base.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sseserver.streams.base import Signal, event_id, new_stream_id, parse_event_id
from sseserver.streams.memory import MemoryStore


async def test_read_replays_then_waits_for_new_frames() -> None:
    store = MemoryStore()
    await store.create("s")
    await store.append("s", b"a")
    await store.append("s", b"b")
    batch = await store.read("s", 1, wait=1)
    assert batch is not None
    assert (batch.frames, batch.ended) == ([b"b"], False)
    reader = asyncio.create_task(store.read("s", 2, wait=5))
    await asyncio.sleep(0.01)
    assert not reader.done()
    await store.append("s", b"c")
    batch = await reader
    assert batch is not None
    assert batch.frames == [b"c"]


async def test_a_read_that_waits_in_vain_returns_empty_after_wait() -> None:
    store = MemoryStore()
    await store.create("s")
    started = time.monotonic()
    batch = await store.read("s", 0, wait=0.1)
    assert batch is not None
    assert (batch.frames, batch.ended) == ([], False)
    assert 0.09 <= time.monotonic() - started < 0.5


async def test_one_reader_timing_out_does_not_disturb_another() -> None:
    store = MemoryStore()
    await store.create("s")
    patient = asyncio.create_task(store.read("s", 0, wait=5))
    assert await store.read("s", 0, wait=0.05) is not None  # times out first
    await store.append("s", b"x")
    batch = await patient
    assert batch is not None
    assert batch.frames == [b"x"]


async def test_finish_ends_readers_and_frees_after_keep_for() -> None:
    store = MemoryStore()
    await store.create("s")
    reader = asyncio.create_task(store.read("s", 0, wait=5))
    await asyncio.sleep(0)
    await store.append("s", b"last")
    await store.finish("s", keep_for=0.05)
    batch = await reader
    assert batch is not None
    assert batch.frames == [b"last"]
    batch = await store.read("s", 1, wait=5)  # ended: no waiting
    assert batch is not None
    assert (batch.frames, batch.ended) == ([], True)
    await asyncio.sleep(0.1)
    assert await store.read("s", 0, wait=0) is None
    assert not await store.request_cancel("s")


async def test_presence_and_cancel_signals_in_order() -> None:
    store = MemoryStore()
    await store.create("s")
    await store.join("s")
    await store.join("s")
    await store.leave("s")
    await store.leave("s")
    assert await store.request_cancel("s")
    got = [await store.next_signal("s") for _ in range(3)]
    assert got == [Signal.BUSY, Signal.IDLE, Signal.CANCEL]
    assert store.subscriber_count() == 0


def test_event_ids_round_trip_and_refuse_garbage() -> None:
    stream_id = new_stream_id()
    assert ":" not in stream_id
    assert parse_event_id(event_id(stream_id, 42)) == (stream_id, 42)
    for bad in ("", "x", ":1", "a:", "a:b", "a:-1", "a b:1", "a:1e2", "a:" + "9" * 10,
                "a:١٢", "x" * 65 + ":1"):
        assert parse_event_id(bad) is None, bad


@pytest.mark.parametrize("stream_id", ["gone", "a-b_c"])
async def test_unknown_streams_read_as_none(stream_id: str) -> None:
    store = MemoryStore()
    assert await store.read(stream_id, 0, wait=1) is None
    await store.join(stream_id)  # harmless
    await store.leave(stream_id)
