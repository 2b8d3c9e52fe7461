"""Overload (docs/operations.md, "Overload"): offered far more paced streams than one
process carries, it sheds new generations with 503 and Retry-After while every stream it
admitted keeps its pace and its exact text, on both stores."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import aiohttp
import pytest

from .support.metrics_text import Samples, parse, value
from .support.processes import Processes, ServerProcess, store_options

LIMIT_MS: Final = 10
# What the lag's p99 may reach beyond the limit once the connections are open: admission
# reacts to the median of half a second, and the streams admitted just before it did
# still run their course.
MARGIN_MS: Final = 130
# The first seconds: every connection opening at once, a burst no admission can shed.
RAMP_SECONDS: Final = 4
PACE_MS: Final = 20
TOKENS: Final = 150
OFFERED: Final = 2500  # connections, each a stream after another for the run
SECONDS: Final = 15


async def _metrics(server: ServerProcess) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/metrics"
    ) as response:
        return parse(await response.text())


def _lag_buckets(samples: Samples) -> dict[float, float]:
    return {
        float(dict(labels)["le"]): count for (name, labels), count in samples.items()
        if name == "sseserver_event_loop_lag_seconds_bucket"
    }


def _lag_p99_ms(before: Samples, after: Samples) -> float:
    """The 99th percentile of the loop-lag samples taken between two scrapes, as the upper
    bound of its histogram bucket."""
    start, end = _lag_buckets(before), _lag_buckets(after)
    buckets = sorted((le, end[le] - start.get(le, 0.0)) for le in end)
    total = buckets[-1][1]
    assert total > 50, "too few lag samples"
    return next(le for le, count in buckets if count >= 0.99 * total) * 1000


@pytest.mark.scale
@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_offered_far_too_much_it_sheds_new_streams_and_keeps_the_admitted_exact(
    processes: Processes, request: pytest.FixtureRequest, backend: str,
) -> None:
    store = store_options(request, backend)
    server = await processes.sseserver(
        None, "--demo-delay-ms", str(PACE_MS), "--demo-tokens", str(TOKENS),
        "--max-loop-lag-ms", str(LIMIT_MS), *store,
    )
    load = asyncio.create_task(processes.loadgen(
        server.url, "-c", str(OFFERED), "-d", str(SECONDS), "--mode", "streams",
        "--pace-ms", str(PACE_MS), "--expect-messages", str(TOKENS), "--honor-retry-after",
        "--connect-concurrency", "200", "--server-pid", str(server.pid),
        timeout=SECONDS + 60,
    ))
    await asyncio.sleep(RAMP_SECONDS)
    opened = await _metrics(server)
    report: dict[str, Any] = await load
    samples = await _metrics(server)
    refused = value(samples, "sseserver_refused_total", reason="overload")
    started = value(samples, "sseserver_generations_started_total")
    lag_p99 = _lag_p99_ms(opened, samples)
    gap = report["inter_event_ms"]
    print(f"{backend}: {OFFERED} connections offered; {started:.0f} streams admitted, "
          f"{refused:.0f} refused (overload); gap p99 {gap['p99']:.1f} ms (pace {PACE_MS}); "
          f"loop lag p99 ≤ {lag_p99:g} ms (limit {LIMIT_MS}); "
          f"server CPU {report['server']['cpu_pct']:.0f}%")
    assert report["verification"]["ok"], report["verification"]
    assert set(report["errors"]) <= {"http_503"}, report["errors"]  # nothing lost, nothing cut
    # Every refusal the load generator saw was counted (a few more came as its run ended).
    assert 0 < report["errors"].get("http_503", 0) <= refused
    assert value(samples, "sseserver_generations_finished_total", ended="lost") == 0
    assert lag_p99 <= LIMIT_MS + MARGIN_MS
