"""A process that stops for a while (SIGSTOP) on Redis (docs/operations.md, "Redis"):
shorter than its lease, nothing is lost; past it, its peers bury it, the subscribers they
serve get `generation_lost` within the stated bound, and the process, once it runs again,
finds its streams ended and stops them."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Final

import aiohttp

from sseserver.store.redis.liveness import HEARTBEAT_INTERVAL, PROCESS_LEASE

from .support.metrics_text import once_idle, value
from .support.processes import Processes, ServerProcess
from .support.sse_client import open_sse

PACE_MS: Final = 200
TOKENS: Final = 60
# A process paused longer than its lease is buried by the next beat of a peer.
DEATH_BOUND: Final = PROCESS_LEASE + HEARTBEAT_INTERVAL + 1.0


async def _two(processes: Processes, redis_url: str) -> tuple[ServerProcess, ServerProcess]:
    args = ("--redis-url", redis_url, "--demo-delay-ms", str(PACE_MS),
            "--demo-tokens", str(TOKENS), "--resume-window", "30")
    return (await processes.sseserver(None, *args), await processes.sseserver(None, *args))


async def test_a_2s_pause_shorter_than_the_lease_loses_nothing(
    processes: Processes, redis_url: str,
) -> None:
    owner, _peer = await _two(processes, redis_url)
    load = asyncio.create_task(processes.loadgen(
        owner.url, "-c", "500", "-n", "500", "--mode", "streams",
        "--pace-ms", str(PACE_MS), "--expect-messages", str(TOKENS),
    ))
    await asyncio.sleep(4)  # every stream running
    owner.signal(signal.SIGSTOP)
    await asyncio.sleep(2.0)
    owner.signal(signal.SIGCONT)
    report = await load
    print(f"after a 2 s pause: {report['streams']['completed']} streams, gap max "
          f"{report['inter_event_ms']['max']:.0f} ms, errors {report['errors']}")
    assert report["verification"]["ok"], report["verification"]
    assert report["errors"] == {}  # no generation_lost
    assert report["streams"]["completed"] == 500
    assert report["inter_event_ms"]["max"] >= 1500  # the pause really happened
    assert "taken for dead" not in owner.log


async def test_a_pause_past_the_lease_ends_its_streams_as_lost_everywhere(
    processes: Processes, redis_url: str,
) -> None:
    owner, peer = await _two(processes, redis_url)
    async with aiohttp.ClientSession() as session:
        urls = []
        for _ in range(20):
            async with session.post(owner.url + "/api/streams", json={
                "messages": [{"role": "user", "content": "hi"}]
            }) as response:
                urls.append(str((await response.json())["url"]))
    streams = [await open_sse(peer.url + url) for url in urls]  # served by the peer
    try:
        for stream in streams:
            await stream.take(2)
        owner.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        ends = await asyncio.gather(*(s.read_all(timeout=DEATH_BOUND + 5) for s in streams))
        noticed = time.monotonic() - stopped_at
    finally:
        owner.signal(signal.SIGCONT)
        for stream in streams:
            await stream.close()
    for events in ends:
        assert events[-1].type == "error"
        assert json.loads(events[-1].data)["type"] == "generation_lost"
    print(f"owner paused: its peer's subscribers got generation_lost within {noticed:.1f} s "
          f"(bound {DEATH_BOUND:g} s)")
    assert noticed <= DEATH_BOUND
    # Running again, the owner finds its streams ended and stops their generations.
    samples = await once_idle(owner.url, 10, "the paused owner's generations")
    assert value(samples, "sseserver_generations_finished_total", ended="lost") == 20
    assert "was taken for dead" in owner.log
