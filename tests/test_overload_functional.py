"""Overload (docs/operations.md, "Overload"): offered far more paced streams than one
process carries, it sheds new generations with 503 and Retry-After while every stream it
admitted keeps its pace and its exact text, on both stores."""

from __future__ import annotations

import math
from typing import Any, Final

import aiohttp
import pytest

from .metrics_text import Samples, parse, value
from .processes import Processes, ServerProcess

LIMIT_MS: Final = 50
# What the lag's p99 may reach beyond the limit: admission reacts to a sustained lag, and
# the streams admitted just before it did still run their course.
MARGIN_MS: Final = 200
PACE_MS: Final = 20
TOKENS: Final = 150
OFFERED: Final = 2500  # connections, each a stream after another for the run
SECONDS: Final = 15


async def _metrics(server: ServerProcess) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/metrics"
    ) as response:
        return parse(await response.text())


def _lag_p99_ms(samples: Samples) -> float:
    """The 99th percentile of the loop-lag histogram, as its bucket's upper bound."""
    buckets = sorted(
        (float(dict(labels)["le"]), count) for (name, labels), count in samples.items()
        if name == "sseserver_event_loop_lag_seconds_bucket"
    )
    total = buckets[-1][1]
    return next(le for le, count in buckets if count >= 0.99 * total) * 1000


@pytest.mark.scale
@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_offered_far_too_much_it_sheds_new_streams_and_keeps_the_admitted_exact(
    processes: Processes, request: pytest.FixtureRequest, backend: str,
) -> None:
    store: tuple[str, ...] = ()
    if backend == "redis":
        store = ("--redis-url", request.getfixturevalue("redis_url"))
    server = await processes.sseserver(
        None, "--demo-delay-ms", str(PACE_MS), "--demo-tokens", str(TOKENS),
        "--max-loop-lag-ms", str(LIMIT_MS), *store,
    )
    report: dict[str, Any] = await processes.loadgen(
        server.url, "-c", str(OFFERED), "-d", str(SECONDS), "--mode", "streams",
        "--pace-ms", str(PACE_MS), "--expect-messages", str(TOKENS), "--honor-retry-after",
        "--connect-concurrency", "200", "--server-pid", str(server.pid),
        timeout=SECONDS + 60,
    )
    samples = await _metrics(server)
    refused = value(samples, "sseserver_refused_total", reason="overload")
    started = value(samples, "sseserver_generations_started_total")
    lag_p99 = _lag_p99_ms(samples)
    gap = report["inter_event_ms"]
    print(f"{backend}: {OFFERED} connections offered; {started:.0f} streams admitted, "
          f"{refused:.0f} refused (overload); gap p99 {gap['p99']:.1f} ms (pace {PACE_MS}); "
          f"loop lag p99 ≤ {lag_p99:g} ms (limit {LIMIT_MS}); "
          f"server CPU {report['server']['cpu_pct']:.0f}%")
    assert report["verification"]["ok"], report["verification"]
    assert set(report["errors"]) <= {"http_503"}, report["errors"]  # nothing lost, nothing cut
    assert report["errors"].get("http_503", 0) == refused > 0
    assert value(samples, "sseserver_generations_finished_total", ended="lost") == 0
    assert lag_p99 <= LIMIT_MS + MARGIN_MS
    assert not math.isnan(lag_p99)
