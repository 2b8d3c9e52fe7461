"""Finished streams are bounded in bytes as well as time (--resume-max-mb): under a flood of
short replies the oldest finished streams are freed first, memory stays under the bound,
and a resume of a freed stream gets 204 (docs/protocol.md, "204 No Content")."""

from __future__ import annotations

from typing import Any, Final

import aiohttp
import pytest

from .support.processes import Processes, ServerProcess, store_options
from .support.redis_server import RedisServer
from .support.sse_client import open_sse

CAP_MB: Final = 4
# What RSS may grow beyond the cap: the streams running at the time, the allocator's slack.
MARGIN_MB: Final = 40
FLOOD_SECONDS: Final = 20


async def _finished_stream(server: ServerProcess) -> str:
    """One reply read to its end; the id of its first event."""
    async with await open_sse(server.url + "/api/sse?message=first") as stream:
        await stream.read_all()
    assert stream.types()[-1] == "done"
    return stream.events[0].last_event_id


async def _resume_status(server: ServerProcess, event_id: str) -> int:
    stream_id = event_id.split(":")[0]
    async with aiohttp.ClientSession() as session, session.get(
        f"{server.url}/api/streams/{stream_id}", headers={"Last-Event-ID": event_id}
    ) as response:
        return response.status


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_flood_of_short_replies_stays_under_the_cap_and_frees_the_oldest(
    processes: Processes, request: pytest.FixtureRequest, backend: str,
) -> None:
    store = store_options(request, backend)
    server = await processes.sseserver(
        None, "--demo-delay-ms", "0", "--demo-tokens", "1000", "--resume-window", "600",
        "--resume-max-mb", str(CAP_MB), *store,
    )
    first = await _finished_stream(server)
    assert await _resume_status(server, first) == 200  # held: its window is ten minutes
    report: dict[str, Any] = await processes.loadgen(
        server.url, "-c", "50", "-d", str(FLOOD_SECONDS), "--expect-messages", "1000",
        "--server-pid", str(server.pid), timeout=FLOOD_SECONDS + 60,
    )
    grown = (report["server"]["rss_peak"] - report["server"]["rss_start"]) / 2**20
    finished = report["streams"]["completed"]
    print(f"{backend}: {finished} replies of 1,000 events in {FLOOD_SECONDS} s; RSS grew "
          f"{grown:.1f} MiB (cap {CAP_MB} MiB + margin {MARGIN_MB} MiB)")
    assert report["verification"]["ok"], report["verification"]
    assert finished * 1000 * 60 > 3 * CAP_MB * 2**20  # several times what the cap keeps
    assert grown < CAP_MB + MARGIN_MB
    assert await _resume_status(server, first) == 204  # freed, the oldest first
    if backend == "redis":
        used = _redis_used_mb(request.getfixturevalue("redis_server"))
        print(f"redis: {used:.1f} MiB used after the flood")
        assert used < CAP_MB + MARGIN_MB


def _redis_used_mb(redis: RedisServer) -> float:
    info = redis.command(b"INFO", b"memory")
    assert info is not None
    line = next(x for x in info.decode().splitlines() if x.startswith("used_memory:"))
    return int(line.split(":")[1]) / 2**20
