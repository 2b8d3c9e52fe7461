"""`make bench-memory` must measure what it says: open streams, per stream, by site."""

from __future__ import annotations

import re

import pytest

from bench.memory import measure


@pytest.mark.parametrize(("stack", "own_line"), [
    ("sseserver", "sseserver/streams/memory.py"),  # the frames each stream keeps for resume
    ("raw", "bench/peers/raw_aiohttp.py"),
])
async def test_memory_per_open_stream_names_its_allocation_sites(
    stack: str, own_line: str,
) -> None:
    report = await measure(stack, streams=30, top=60, settle=2.5)
    match = re.match(rf"{stack}: ([\d.]+) KiB per open stream \(traced, 30 streams", report)
    assert match, report
    # An open aiohttp stream holds several KiB (its request, parser, response, task);
    # a count of ~0 would mean the streams were not open at the snapshot.
    assert 3 < float(match.group(1)) < 100, report
    assert "aiohttp/web_protocol.py" in report
    assert own_line in report
