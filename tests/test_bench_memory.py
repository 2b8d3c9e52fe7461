"""`make bench-memory` must measure what it says: open streams, per stream, by site."""

from __future__ import annotations

import re

import pytest

from bench.memory import Footprint, added, measure, report


@pytest.mark.parametrize(("stack", "own_line"), [
    ("sseserver", "sseserver/store/memory.py"),  # the frames each stream keeps for resume
    ("raw", "bench/peers/raw_aiohttp.py"),
])
async def test_memory_per_open_stream_names_its_allocation_sites(
    stack: str, own_line: str,
) -> None:
    footprint = await measure(stack, streams=30, settle=2.5)
    text = report(footprint, top=60)
    match = re.match(rf"{stack}: ([\d.]+) KiB per open stream \(traced, 30 streams", text)
    assert match, text
    # An open aiohttp stream holds several KiB (its request, parser, response, task);
    # a count of ~0 would mean the streams were not open at the snapshot.
    assert 3 < float(match.group(1)) < 100, text
    assert "aiohttp/web_protocol.py" in text
    assert own_line in text


def test_added_is_the_difference_by_site() -> None:
    ours = Footprint("sseserver", 10, 1.0, {"a.py:1": (300.0, 2.0), "b.py:2": (100.0, 1.0)})
    raw = Footprint("raw", 10, 1.0, {"a.py:1": (200.0, 1.0), "c.py:3": (50.0, 1.0)})
    text = added(ours, raw, top=10)
    assert text.splitlines()[0].startswith("sseserver - raw: 0.15 KiB per open stream")
    assert text.splitlines()[2:] == ["      100  a.py:1", "      100  b.py:2"]


async def test_memory_per_open_stream_on_redis_names_the_redis_store(redis_url: str) -> None:
    footprint = await measure("sseserver-redis", streams=30, settle=2.5, redis_url=redis_url)
    text = report(footprint, top=80)
    assert text.startswith("sseserver-redis: ")
    assert "sseserver/store/redis/" in text
