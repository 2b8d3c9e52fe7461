"""`make bench-redis` (`python -m bench.redis_vs_memory`): the Redis stream store beside the
in-memory one, same run, same load.

    python -m bench.redis_vs_memory [--streams 50] [--flat-tokens 2000] [--tokens 200]
                                    [--paced-streams 20] [--delay-ms 20]
                                    [--scale-streams 1500] [--no-scale] [--scale-only]
                                    [--no-cluster]

Starts Debian's redis-server as the tests do, the tests' fake Anthropic API in its own
process with stamped replies (each text delta is the time it was written, in monotonic ns),
and `python -m sseserver` once per backend. Then, for each backend, two loads:

- paced: --paced-streams concurrent GET /api/sse, each --tokens deltas --delay-ms
  apart (a load well below saturation); per-event latency = arrival at the client -
  departure from the upstream (the same machine's monotonic clock), so it covers
  SDK -> pump -> store -> subscriber -> socket.
- flat out: --streams concurrent streams of --flat-tokens deltas with no delay; events/s
  delivered to the clients, and per second of the server process's CPU (read from /proc,
  in 10 ms ticks: hence enough events), Redis's CPU beside it.

Then the scale run (docs/performance.md, "Redis"): the demo provider at 200 ms per token,
100 tokens a reply; one in-memory process with 2 × --scale-streams streams, then two
processes on one Redis with --scale-streams each, every process loaded by its own
`python -m sseserver.loadgen` (which verifies every stream): the gap between events, the
first event, the server CPU and Redis's connections; then the same two processes on a
Redis Cluster of 3 masters and 3 replicas (tests/support/redis_cluster.py), with each master's
CPU per 1,000 events beside the lone Redis's.

The client reads the stamps out of the events, which `python -m sseserver.loadgen` does
not do, so it is a small one of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final, cast

import aiohttp

from sseserver.loadgen.decoder import SseDecoder
from sseserver.loadgen.stats import ProcStats
from tests.support.fake_anthropic import DEFAULT_API_KEY, Reply, running_fake_anthropic
from tests.support.processes import server_env
from tests.support.redis_server import RedisServer
from tests.support.system_tools import REDIS_SERVER

ROOT = Path(__file__).resolve().parent.parent


def _upstream(control: Connection) -> None:
    """The fake's process: sends its URL, then serves each (tokens, delay) it is sent."""
    asyncio.run(_serve_upstream(control))


async def _serve_upstream(control: Connection) -> None:
    loop = asyncio.get_running_loop()
    async with running_fake_anthropic() as fake:
        fake.max_recorded = 1000  # every request is recorded: keep memory bounded
        control.send(fake.base_url)
        while (order := await loop.run_in_executor(None, control.recv)) is not None:
            tokens, delay_ms = order
            fake.default_reply = Reply(chunks=("",) * tokens, delay=delay_ms / 1000, stamp=True)
            control.send("ok")


def _start_server(upstream: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = server_env(ANTHROPIC_API_KEY=DEFAULT_API_KEY, ANTHROPIC_BASE_URL=upstream,
                     SSESERVER_LOG_LEVEL="warning")
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0", "--provider", "anthropic",
         "--upstream-retries", "0", "--max-tokens", "100000", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    match = re.search(r"http://\S+", process.stdout.readline())
    assert match, "sseserver did not start"
    return process, match.group(0)


async def _one_stream(session: aiohttp.ClientSession, url: str, tokens: int,
                      latencies: list[float]) -> int:
    """One stream, verified as the load generator verifies one: ids `<stream>:<index>`
    consecutive from 0, `tokens` message events, then `done`; its messages' latencies."""
    due = messages = 0
    done = False
    now = 0  # arrival of the bytes being decoded, in monotonic ns

    def on_event(event_id: bytes | None, event: bytes, data: bytes) -> None:
        nonlocal due, messages, done
        index = int(event_id.rpartition(b":")[2]) if event_id else None
        if index != due or done:
            raise RuntimeError(f"event id {event_id!r} where index {due} was due")
        due += 1
        if event == b"error":
            raise RuntimeError(data.decode())
        if event == b"message":
            latencies.append((now - int(json.loads(data))) / 1e6)
            messages += 1
        elif event == b"done":
            done = True

    decoder = SseDecoder(on_event)
    async with session.get(url + "/api/sse?message=bench") as response:
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {await response.text()}")
        async for chunk in response.content.iter_any():
            now = time.monotonic_ns()
            decoder.feed(chunk)
    if not done or messages != tokens:
        raise RuntimeError(f"{messages} of {tokens} messages, done {done}")
    return messages


def _configure(control: Connection, tokens: int, delay_ms: float) -> None:
    """Every reply of the fake from now on: `tokens` stamped deltas, `delay_ms` apart."""
    control.send((tokens, delay_ms))
    if not control.poll(10):
        raise RuntimeError("the fake upstream did not answer")
    control.recv()


async def _load(server: str, streams: int, tokens: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        counts = await asyncio.gather(*(_one_stream(session, server, tokens, latencies)
                                        for _ in range(streams)))
        elapsed = time.monotonic() - started
    assert sum(counts) == streams * tokens, f"{sum(counts)} of {streams * tokens} events"
    return sum(counts) / elapsed, latencies


def _measure(url: str, control: Connection, streams: int, tokens: int,
             delay_ms: float) -> tuple[float, list[float]]:
    _configure(control, tokens, delay_ms)
    return asyncio.run(_load(url, streams, tokens))


def _cpu_per_event(url: str, control: Connection, streams: int, tokens: int,
                   watched: dict[str, ProcStats]) -> tuple[float, dict[str, float]]:
    """Events/s flat out, and the CPU seconds each watched process spent per 1,000 events."""
    before = {name: proc.cpu() for name, proc in watched.items()}
    rate, _ = _measure(url, control, streams, tokens, 0)
    events = streams * tokens
    return rate, {name: (proc.cpu() - before[name]) / events * 1000
                  for name, proc in watched.items()}


SCALE_PACE_MS: Final = 200
SCALE_TOKENS: Final = 100


def _scale_row(label: str, servers: list[tuple[subprocess.Popen[str], str]],
               streams: int, redis: ProcStats | None, redis_port: int | None,
               shards: list[ProcStats] | None = None,
               ports: list[int] | None = None) -> dict[str, object]:
    """Each server loaded by its own load generator at once; the worst figures of them.
    `ports`: the Redis (or each master) whose commands and reads are counted."""
    ports = ports or ([redis_port] if redis_port else [])
    counted = [_redis_counters(port) for port in ports]
    loads = [subprocess.Popen(
        [sys.executable, "-m", "sseserver.loadgen", url, "-c", str(streams), "-n", str(streams),
         "--pace-ms", str(SCALE_PACE_MS), "--expect-messages",
         str(SCALE_TOKENS), "--connect-concurrency", "200", "--server-pid", str(process.pid),
         "--json", "--timeout", "120"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    ) for process, url in servers]
    redis_cpu = redis.cpu() if redis else 0.0
    shard_cpu = [shard.cpu() for shard in shards or ()]
    time.sleep(10)  # every stream running: what Redis holds for them now
    clients = _redis_clients(redis_port) if redis_port else 0
    reports = [json.loads(load.communicate()[0]) for load in loads]
    # Every event of every stream (Redis's CPU is read over the whole run, not a window).
    events = sum(int(count) * int(streams) for r in reports
                 for count, streams in r["verification"]["events_per_stream"].items())
    per_1k = [(shard.cpu() - before) / events * 1e6
              for shard, before in zip(shards or (), shard_cpu, strict=True)]
    if redis:
        per_1k = [(redis.cpu() - redis_cpu) / events * 1e6]
    spent = [_difference(_redis_counters(port), before)
             for port, before in zip(ports, counted, strict=True)]
    return {
        "label": label,
        "verified": all(r["verification"]["ok"] for r in reports),
        "completed": sum(r["streams"]["completed"] for r in reports),
        "errors": sum(sum(r["errors"].values()) for r in reports),
        "gap_p50": max(r["inter_event_ms"]["p50"] for r in reports),
        "gap_p99": max(r["inter_event_ms"]["p99"] for r in reports),
        "ttfe_p99": max(r["ttfe_ms"]["p99"] for r in reports),
        "cpu_pct": [round(r["server"]["cpu_pct"]) for r in reports],
        "redis_cpu_pct": (redis.cpu() - redis_cpu) / max(r["window_s"] for r in reports) * 100
        if redis else 0.0,
        "redis_clients": clients,
        "redis_ms_per_1k": per_1k,
        # Per 1,000 events of the whole load, for each Redis: reads (a batch each, about),
        # and commands by name.
        "redis_reads_per_1k": [n.get("reads", 0) / events * 1000 for n in spent],
        "redis_calls_per_1k": [{name: round(calls / events * 1000, 1)
                                for name, calls in sorted(n.items(), key=lambda i: -i[1])
                                if name != "reads" and calls / events * 1000 >= 0.5}
                               for n in spent],
    }


def _redis_counters(port: int) -> dict[str, int]:
    """Reads processed, and calls of each command, since the Redis at `port` started."""
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "all"],
                         capture_output=True, text=True, check=False).stdout
    counters = {name: int(calls) for name, calls in
                re.findall(r"^cmdstat_([a-z|]+):calls=(\d+)", out, re.MULTILINE)}
    reads = re.search(r"^total_reads_processed:(\d+)", out, re.MULTILINE)
    counters["reads"] = int(reads.group(1)) if reads else 0
    return counters


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items()}


def _redis_clients(port: int) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "clients"],
                         capture_output=True, text=True, check=False).stdout
    match = re.search(r"connected_clients:(\d+)", out)
    return int(match.group(1)) if match else 0


def _demo_server(*extra: str) -> tuple[subprocess.Popen[str], str]:
    env = server_env(SSESERVER_LOG_LEVEL="warning")
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0", "--provider", "demo",
         "--demo-delay-ms", str(SCALE_PACE_MS), "--demo-tokens", str(SCALE_TOKENS), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    match = re.search(r"http://\S+", process.stdout.readline())
    assert match, "sseserver did not start"
    return process, match.group(0)


def _scale(streams: int, redis_port: int, redis: ProcStats,
           cluster: bool) -> list[dict[str, object]]:
    rows = []
    for label, count, extra in (
        ("memory, 1 process", 1, ()),
        ("redis, 2 processes", 2, ("--redis-url", f"redis://127.0.0.1:{redis_port}/0")),
    ):
        servers = [_demo_server(*extra) for _ in range(count)]
        try:
            time.sleep(1)
            rows.append(_scale_row(label, servers, streams * 2 // count,
                                   redis if count > 1 else None,
                                   redis_port if count > 1 else None))
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait()
    if cluster:
        rows.append(_cluster_row(streams))
    return rows


def _cluster_row(streams: int) -> dict[str, object]:
    """Two processes on a 3-master cluster; each master's CPU per 1,000 events."""
    from tests.support.redis_cluster import RedisCluster

    cluster = RedisCluster()
    cluster.start()
    try:
        masters = cluster.masters()
        servers = [_demo_server("--redis-url", cluster.url) for _ in range(2)]
        try:
            time.sleep(1)
            row = _scale_row("cluster, 3 masters", servers, streams, None, None,
                             [ProcStats(m.pid) for m in masters], [m.port for m in masters])
            row["redis_clients"] = sum(_redis_clients(m.port) for m in masters)
            return row
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait()
    finally:
        cluster.close()


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--flat-tokens", type=int, default=2000)
    parser.add_argument("--paced-streams", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--scale-streams", type=int, default=1500,
                        help="streams per Redis process in the scale run")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale run")
    parser.add_argument("--scale-only", action="store_true", help="only the scale run")
    parser.add_argument("--no-cluster", action="store_true",
                        help="leave the Redis Cluster out of the scale run")
    args = parser.parse_args()
    if REDIS_SERVER.find() is None:
        print("redis-server is missing: apt-get install redis-server", file=sys.stderr)
        return 1
    # The tests' Redis: redis-server cannot bind port 0, so its port is held for it.
    redis = RedisServer()
    redis.start()
    redis_port = redis.port
    control, child_end = multiprocessing.Pipe()
    upstream_process = multiprocessing.get_context("spawn").Process(
        target=_upstream, args=(child_end,), daemon=True)
    upstream_process.start()
    rows = []
    scale: list[dict[str, object]] = []
    redis_stats = ProcStats(redis.pid)
    try:
        if not control.poll(30):
            raise RuntimeError("the fake upstream did not start")
        upstream = str(control.recv())
        for backend, extra in () if args.scale_only else (
                ("memory", ()), ("redis", ("--redis-url", f"redis://127.0.0.1:{redis_port}/0"))):
            server, url = _start_server(upstream, *extra)
            try:
                _measure(url, control, 5, 20, 0)  # warm up
                _, paced = _measure(url, control, args.paced_streams, args.tokens,
                                    args.delay_ms)
                rate, cpu = _cpu_per_event(url, control, args.streams, args.flat_tokens,
                                           {"server": ProcStats(server.pid),
                                            "redis": redis_stats})
            finally:
                server.terminate()
                server.wait()
            rows.append((backend, rate, 1000 / cpu["server"] if cpu["server"] else 0.0,
                         cpu["redis"] * 1000 if extra else 0.0, statistics.median(paced),
                         _quantile(paced, 0.99), max(paced)))
        if not args.no_scale:
            scale = _scale(args.scale_streams, redis_port, redis_stats, not args.no_cluster)
    finally:
        # The fake may be gone already; the error that brought us here is the one to show.
        with contextlib.suppress(OSError):
            control.send(None)
        upstream_process.join(10)
        if upstream_process.is_alive():
            upstream_process.terminate()
        redis.close()
    if rows:
        _print_flat(args, rows)
    if scale:
        print(f"\nscale: {2 * args.scale_streams} streams in all, {SCALE_TOKENS} tokens "
              f"{SCALE_PACE_MS} ms apart, each process loaded by its own load generator")
        print(f"{'run':20} {'verified':>8} {'streams':>8} {'errors':>6} {'gap p50':>8} "
              f"{'gap p99':>8} {'TTFE p99':>9} {'server CPU %':>13} {'redis CPU %':>11} "
              f"{'redis conns':>11}  redis CPU-ms per 1k events (each master)")
        for row in scale:
            per_1k = cast(list[float], row["redis_ms_per_1k"])
            print(f"{row['label']:20} {row['verified']!s:>8} {row['completed']:>8} "
                  f"{row['errors']:>6} {row['gap_p50']:>8.1f} {row['gap_p99']:>8.1f} "
                  f"{row['ttfe_p99']:>9.1f} {row['cpu_pct']!s:>13} "
                  f"{row['redis_cpu_pct']:>11.0f} {row['redis_clients']:>11}  "
                  + " ".join(f"{ms:.2f}" for ms in per_1k))
            reads = cast(list[float], row["redis_reads_per_1k"])
            calls = cast(list[dict[str, float]], row["redis_calls_per_1k"])
            for number, (read, named) in enumerate(zip(reads, calls, strict=True)):
                print(f"{'':20} redis {number}: {read:.0f} reads per 1k events; calls per 1k "
                      "events: " + ", ".join(f"{name} {n:g}" for name, n in named.items()))
        lone = [r for r in scale if r["label"].startswith("redis")]  # type: ignore[attr-defined]
        shards = [r for r in scale if r["label"].startswith("cluster")]  # type: ignore[attr-defined]
        if lone and shards:
            busiest = max(cast(list[float], shards[0]["redis_ms_per_1k"]))
            alone = cast(list[float], lone[0]["redis_ms_per_1k"])[0]
            print(f"busiest master / lone Redis, CPU per 1,000 events: {busiest / alone:.2f}")
    return 0


def _print_flat(args: argparse.Namespace,
                rows: list[tuple[str, float, float, float, float, float, float]]) -> None:
    print(f"events/s: {args.streams} streams x {args.flat_tokens} events, flat out; latency: "
          f"{args.paced_streams} streams x {args.tokens} events, one per {args.delay_ms:g} ms "
          "each, upstream to client")
    print(f"{'backend':8} {'events/s':>10} {'ev/server-CPU-s':>16} {'redis CPU-ms/1k ev':>19} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for backend, rate, per_cpu, redis_ms, p50, p99, worst in rows:
        print(f"{backend:8} {rate:10.0f} {per_cpu:16.0f} {redis_ms:19.1f} "
              f"{p50:8.2f} {p99:8.2f} {worst:8.2f}")
    memory, redis_row = rows[0], rows[1]
    print(f"redis/memory: events per server-CPU-second {redis_row[2] / memory[2]:.0%}, "
          f"latency p99 {redis_row[5] / memory[5]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
