"""`python -m bench.redis_capacity` (the last part of `make bench-redis`): how many events a
Redis carries when its CPU is the limit, a lone Redis beside a 3-master cluster.

    python -m bench.redis_capacity [--share 0.05] [--seconds 15] [--connections 50]
                                   [--tokens 1000]

At Claude's pace a Redis is mostly idle, and its CPU per event then counts a floor that does
not divide among masters (each answers every process's batches; docs/performance.md,
"Redis"). Capacity is what that CPU per event is meant to predict, so here it is measured
directly: every Redis process that takes writes (the lone Redis, or each master) is held to
the same share of one core by a cgroup's CPU quota, and two sseserver processes on it run
flat out (the demo provider without delay), each loaded by its own
`python -m sseserver.loadgen`, which verifies every stream. The events delivered per second
are what that Redis, or that cluster, carries; a row counts only if every capped Redis used
nearly all of its quota (else something else was the limit, and the row says so).

Four setups, to compare like with like: a lone Redis, a lone Redis with a replica (as each
master has), the cluster with a replica per master (as `make test` runs it), the cluster
without replicas. Replicas are not capped.

Needs root and a cgroup CPU controller (v1 `cpu`, or v2 `cpu.max`): without them it says
so and measures nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

from sseserver.loadgen.stats import ProcStats
from tests.support.processes import server_env
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.system_tools import REDIS_SERVER

ROOT: Final = Path(__file__).resolve().parent.parent
CGROUP_V1: Final = Path("/sys/fs/cgroup/cpu")
CGROUP_V2: Final = Path("/sys/fs/cgroup")
# A capped Redis that used less of its quota than this was not the limit.
SATURATED: Final = 0.9


class CpuCap:
    """A cgroup holding its processes to `share` of one core (CFS quota). The period is
    as short as the kernel's 1 ms least quota allows, so a throttled Redis pauses briefly."""

    def __init__(self, name: str, share: float) -> None:
        self.share = share
        period = max(10_000, math.ceil(1000 / share))
        quota = round(share * period)
        if (CGROUP_V2 / "cgroup.controllers").exists():
            controllers = (CGROUP_V2 / "cgroup.subtree_control").read_text().split()
            if "cpu" not in controllers:
                (CGROUP_V2 / "cgroup.subtree_control").write_text("+cpu")
            self._dir = CGROUP_V2 / name
            self._dir.mkdir(exist_ok=True)
            (self._dir / "cpu.max").write_text(f"{quota} {period}")
        else:
            self._dir = CGROUP_V1 / name
            self._dir.mkdir(exist_ok=True)
            (self._dir / "cpu.cfs_period_us").write_text(str(period))
            (self._dir / "cpu.cfs_quota_us").write_text(str(quota))

    def add(self, pid: int) -> None:
        (self._dir / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Its processes back to the parent cgroup, and the cgroup removed."""
        for pid in (self._dir / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, OSError):
                (self._dir.parent / "cgroup.procs").write_text(pid)
        self._dir.rmdir()


@contextmanager
def capped(pids: list[int], share: float) -> Iterator[None]:
    """Each of `pids` held to `share` of a core, for the block."""
    caps: list[CpuCap] = []
    try:
        for index, pid in enumerate(pids):
            caps.append(CpuCap(f"sseserver-bench-{index}", share))
            caps[-1].add(pid)
        yield
    finally:
        for cap in caps:
            cap.close()


def cap_unavailable() -> str | None:
    """Why no CPU quota can be set here, or None."""
    if os.geteuid() != 0:
        return "it needs root (a cgroup's CPU quota)"
    if (CGROUP_V2 / "cgroup.controllers").exists():
        if "cpu" not in (CGROUP_V2 / "cgroup.controllers").read_text().split():
            return "the cgroup v2 cpu controller is not available"
    elif not (CGROUP_V1 / "cpu.cfs_quota_us").exists():
        return "no cgroup cpu controller is mounted at /sys/fs/cgroup/cpu"
    return None


@contextmanager
def _lone(replica: bool) -> Iterator[tuple[str, list[int]]]:
    """A lone Redis (and its replica): its URL, and the pid that takes writes."""
    primary = RedisServer()
    second = RedisServer() if replica else None
    try:
        primary.start()
        if second is not None:
            second.start()
            second.command(b"REPLICAOF", b"127.0.0.1", str(primary.port).encode())
            deadline = time.monotonic() + 10
            while b"master_link_status:up" not in (
                    second.command(b"INFO", b"replication") or b""):
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        yield primary.url, [primary.pid]
    finally:
        primary.close()
        if second is not None:
            second.close()


@contextmanager
def _cluster(replicas: int) -> Iterator[tuple[str, list[int]]]:
    """The tests' cluster of 3 masters: its URL, and the masters' pids."""
    cluster = RedisCluster(replicas=replicas)
    try:
        cluster.start()
        yield cluster.url, [master.pid for master in cluster.masters()]
    finally:
        cluster.close()


def _server(redis_url: str, tokens: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0", "--provider", "demo",
         "--demo-delay-ms", "0", "--demo-tokens", str(tokens), "--redis-url", redis_url],
        cwd=ROOT, env=server_env(SSESERVER_LOG_LEVEL="warning"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    match = re.search(r"http://\S+", process.stdout.readline())
    assert match, "sseserver did not start"
    return process, match.group(0)


def _measure(label: str, redis_url: str, pids: list[int], args: argparse.Namespace,
             ) -> dict[str, object]:
    """Two processes flat out on `redis_url`; the CPU each of `pids` used."""
    servers = [_server(redis_url, args.tokens) for _ in range(2)]
    try:
        time.sleep(1)
        stats = [ProcStats(pid) for pid in pids]
        before = [stat.cpu() for stat in stats]
        loads = [subprocess.Popen(
            [sys.executable, "-m", "sseserver.loadgen", url, "-c", str(args.connections),
             "-d", str(args.seconds), "--expect-messages", str(args.tokens), "--json",
             "--server-pid", str(process.pid), "--timeout", str(args.seconds + 60)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        ) for process, url in servers]
        started = time.monotonic()
        reports = [json.loads(load.communicate()[0]) for load in loads]
        elapsed = time.monotonic() - started
        used = [(stat.cpu() - start) / elapsed for stat, start in zip(stats, before, strict=True)]
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait()
    events = sum(float(report["events_per_s"]) for report in reports)
    return {
        "label": label,
        "events_per_s": events,
        "verified": all(report["verification"]["ok"] for report in reports),
        "errors": sum(sum(report["errors"].values()) for report in reports),
        "server_cpu_pct": [round(report["server"]["cpu_pct"]) for report in reports],
        "redis_used": used,  # of one core, for each capped Redis
        "saturated": all(share >= SATURATED * args.share for share in used),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.05,
                        help="the CPU each capped Redis may use, as a share of one core")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50,
                        help="concurrent streams on each of the two processes")
    parser.add_argument("--tokens", type=int, default=1000)
    args = parser.parse_args()
    if not 0.01 <= args.share <= 1:
        parser.error("--share must be between 0.01 and 1")
    if REDIS_SERVER.find() is None:
        print("redis-server is missing: apt-get install redis-server", file=sys.stderr)
        return 1
    if (why := cap_unavailable()) is not None:
        print(f"capacity: not measured: {why}")
        return 0
    setups: tuple[tuple[str, AbstractContextManager[tuple[str, list[int]]]], ...] = (
        ("lone Redis", _lone(replica=False)),
        ("lone Redis + replica", _lone(replica=True)),
        ("cluster, 3 masters + replicas", _cluster(replicas=1)),
        ("cluster, 3 masters", _cluster(replicas=0)),
    )
    rows = []
    for label, setup in setups:  # each started only as its turn comes
        with setup as (url, pids), capped(pids, args.share):
            rows.append(_measure(label, url, pids, args))
    _print(args, rows)
    return 0


def _print(args: argparse.Namespace, rows: list[dict[str, object]]) -> None:
    print(f"\ncapacity: each Redis that takes writes held to {args.share:.0%} of a core; two "
          f"processes flat out, {args.connections} streams each of {args.tokens} events, "
          f"{args.seconds} s")
    print(f"{'setup':30} {'events/s':>9} {'verified':>8} {'errors':>6} {'server CPU %':>13} "
          f"{'saturated':>9}  CPU-ms per 1k events (each capped Redis)")
    for row in rows:
        events = float(row["events_per_s"])  # type: ignore[arg-type]
        used = row["redis_used"]
        assert isinstance(used, list)
        per_1k = " ".join(f"{share * 1000 / events * 1000:.3f}" for share in used)
        print(f"{row['label']:30} {events:9.0f} {row['verified']!s:>8} {row['errors']:>6} "
              f"{row['server_cpu_pct']!s:>13} {row['saturated']!s:>9}  {per_1k}")
    by_label = {str(row["label"]): float(row["events_per_s"])  # type: ignore[arg-type]
                for row in rows}
    for cluster, lone in (("cluster, 3 masters + replicas", "lone Redis + replica"),
                          ("cluster, 3 masters", "lone Redis"),
                          ("cluster, 3 masters + replicas", "lone Redis")):
        print(f"{cluster} / {lone}: {by_label[cluster] / by_label[lone]:.2f}x the events")


if __name__ == "__main__":
    sys.exit(main())
