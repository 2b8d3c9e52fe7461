"""`make bench` (`python -m bench.run`): the scenarios S1–S7 and R (bench/scenarios.py)
against sseserver and, in the same run, against minimal peers on aiohttp, aiohttp-sse,
sse-starlette and the naive SDK relay (bench/peers/), with `python -m sseserver.loadgen`
as the load.

How a point is measured, and why:
- The server runs pinned to core 0 and the load (loadgen, and for S5 the fake Anthropic API
  in its own process) to core 1 with `taskset`, so they never share a core
  (bench/processes.py).
- Each point starts a fresh server (memory numbers are not polluted by the previous run),
  waits until it listens, runs the loadgen with `--server-pid`, which reads the server's
  utime+stime from /proc/<pid>/stat at the start and end of its measuring window and samples
  VmRSS from /proc/<pid>/status; then the server is stopped.
- Each point runs `--repeats` times (3 by default), alternating the order of the stacks, and
  the table shows medians (bench/report.py). S1/S5a's metric is events per server-CPU-second,
  which does not depend on how busy the load core was.
- The machine may be shared: the CPU other processes used on each core during a point is
  reported ("foreign"), so a noisy point can be told from a slow server.

All load goes to 127.0.0.1, bounded in count and time; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import identity, report
from .processes import (
    LOAD_CORE,
    PY,
    ROOT,
    SERVER_CORE,
    core_busy,
    fake_upstream,
    load_argv,
    process_cpu,
    raise_nofile_limit,
    server_argv,
    serving,
    stop,
)
from .scenarios import FAKE_ALONE, Report, Results, Scenario, scenarios
from .uploads import descendants, processes


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and the processes under it that are alive (sseserver's upload
    parsers run pinned to its core: their CPU is the server's, not foreign)."""
    total = 0.0
    for each in descendants(pid, processes()):
        with contextlib.suppress(OSError):
            total += process_cpu(each)
    return total


def children_cpu_since(before: resource.struct_rusage) -> float:
    """CPU seconds of the child processes waited for since `before`."""
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return now.ru_utime + now.ru_stime - before.ru_utime - before.ru_stime


@contextlib.contextmanager
def uploads(url: str, server_pid: int, scenario: Scenario,
            env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m bench.uploads` on the load core, beside the loadgen (S7); its report is
    its stdout. Stopped if the point ends before it does."""
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CORE, PY, "-m", "bench.uploads", url,
         *scenario.uploads, "--server-pid", str(server_pid)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE)
    try:
        yield process
    finally:
        stop(process)


@dataclass
class Bench:
    quick: bool
    repeats: int
    logs: Path
    variants: dict[str, Path] = field(default_factory=dict)
    results: Results = field(default_factory=dict)

    def run_point(self, scenario: Scenario, stack: str, rep: int) -> Report:
        env = dict(os.environ)
        log = self.logs / f"{scenario.key}-{stack}-{rep}.log"
        with contextlib.ExitStack() as stack_ctx:
            upstream_pid: int | None = None
            stats = self.logs / f"{scenario.key}-{stack}-{rep}-upstream.json"
            if scenario.upstream:
                fake = stack_ctx.enter_context(fake_upstream(
                    scenario, env, self.logs / f"{scenario.key}-{stack}-{rep}-upstream.log",
                    stats))
                upstream_pid = fake.pid
            if stack == FAKE_ALONE:
                alone = self._fake_alone(scenario, env, upstream_pid)
                stack_ctx.close()  # the fake writes its figures as it stops
                alone["bench"] |= json.loads(stats.read_text())
                return alone
            argv, cwd = server_argv(stack, scenario, self.variants)
            server, url = stack_ctx.enter_context(serving(argv, SERVER_CORE, env, log, cwd))
            time.sleep(0.3)  # let start-up work (imports, first GC) settle before measuring
            busy0, server0 = core_busy(), tree_cpu(server.pid)
            up0 = process_cpu(upstream_pid) if upstream_pid else 0.0
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            uploader = None
            if scenario.uploads:  # started with the loadgen: its delay counts from here
                uploader = stack_ctx.enter_context(uploads(url, server.pid, scenario, env))
            t0 = time.monotonic()
            done = subprocess.run(
                ["taskset", "-c", LOAD_CORE, PY, "-m", "sseserver.loadgen",
                 url, *scenario.load, *load_argv(stack), "--json",
                 "--server-pid", str(server.pid)],
                cwd=ROOT, env=env, capture_output=True, timeout=scenario.timeout, check=False,
            )
            wall = time.monotonic() - t0
            busy1, server1 = core_busy(), tree_cpu(server.pid)
            up1 = process_cpu(upstream_pid) if upstream_pid else 0.0
            loadgen_cpu = children_cpu_since(children0)
            uploaded = uploader.communicate(timeout=scenario.timeout)[0] if uploader else None
        if not done.stdout:
            raise RuntimeError(f"loadgen failed: {done.stderr.decode()[-2000:]}")
        result: Report = json.loads(done.stdout)
        c0, c1 = f"cpu{SERVER_CORE}", f"cpu{LOAD_CORE}"
        result["bench"] = {
            "stack": stack, "rep": rep, "wall_s": wall,
            "foreign_core0_pct": 100 * max(0.0, busy1[c0] - busy0[c0] - (server1 - server0))
            / wall,
            "foreign_core1_pct": 100 * max(
                0.0, busy1[c1] - busy0[c1] - loadgen_cpu - (up1 - up0)) / wall,
            # The server with its worker processes, over the whole point (not the window).
            "tree_cpu_pct": 100 * (server1 - server0) / wall,
            "steal_pct": 100 * (busy1[c0 + "_steal"] - busy0[c0 + "_steal"]) / wall,
            "upstream_cpu_pct": 100 * (up1 - up0) / wall if upstream_pid else None,
        }
        if stats.exists():  # the fake's own figures, written as it stopped
            result["bench"] |= json.loads(stats.read_text())
        if uploaded is not None:
            if not uploaded:
                raise RuntimeError("bench.uploads failed: see its stderr above")
            result["uploads"] = json.loads(uploaded)
            # A refused or failed upload fails the point as a lost event would.
            result["verification"]["uploads_ok"] = result["uploads"]["ok"]
            result["verification"]["ok"] &= result["uploads"]["ok"]
        return result

    def _fake_alone(self, scenario: Scenario, env: dict[str, str],
                    upstream_pid: int | None) -> Report:
        """The fake's own latency: `bench.tool_client` in the relay's place, on its core."""
        busy0 = core_busy()
        up0 = process_cpu(upstream_pid) if upstream_pid else 0.0
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        done = subprocess.run(
            ["taskset", "-c", SERVER_CORE, PY, "-m", "bench.tool_client",
             env["ANTHROPIC_BASE_URL"], *scenario.load],
            cwd=ROOT, env=env, capture_output=True, timeout=scenario.timeout, check=False,
        )
        wall = time.monotonic() - t0
        busy1 = core_busy()
        up1 = process_cpu(upstream_pid) if upstream_pid else 0.0
        client_cpu = children_cpu_since(children0)
        if not done.stdout:
            raise RuntimeError(f"tool client failed: {done.stderr.decode()[-2000:]}")
        result: Report = json.loads(done.stdout)
        c0, c1 = f"cpu{SERVER_CORE}", f"cpu{LOAD_CORE}"
        result["bench"] = {
            "stack": FAKE_ALONE, "wall_s": wall,
            "foreign_core0_pct": 100 * max(0.0, busy1[c0] - busy0[c0] - client_cpu) / wall,
            "foreign_core1_pct": 100 * max(0.0, busy1[c1] - busy0[c1] - (up1 - up0)) / wall,
        }
        return result

    def run(self, selected: Sequence[Scenario]) -> None:
        for scenario in selected:
            print(f"\n== {scenario.key} {scenario.title}", flush=True)
            per_stack = self.results.setdefault(scenario.key, {})
            stacks = list(scenario.stacks)
            if scenario.with_variants:
                stacks += [v for v in self.variants if v not in stacks]
            for rep in range(self.repeats):
                order = stacks[rep % len(stacks):] + stacks[:rep % len(stacks)]
                for stack in order:
                    result = self.run_point(scenario, stack, rep)
                    per_stack.setdefault(stack, []).append(result)
                    print("  " + report.point_line(scenario, stack, rep, result), flush=True)
            print(report.render_table(scenario, per_stack), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller numbers, one repeat")
    parser.add_argument("--repeats", type=int, help="runs per point (default 3, quick 1)")
    parser.add_argument("--scenarios", default="", help="comma list, e.g. S1,S5a (default all)")
    parser.add_argument("--stacks", default="", help="comma list to restrict the stacks")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                        help="also run `python -m sseserver` from DIR (a modified copy) as NAME, "
                        "on DIR/.venv/bin/python when DIR has one")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts",
                        help="folder for the JSON results, the table and the logs")
    args = parser.parse_args(argv)
    if not Path("/usr/bin/taskset").exists() and not any(
        (Path(p) / "taskset").exists() for p in os.environ.get("PATH", "").split(":")
    ):
        print("bench: taskset is needed (Debian: util-linux)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("bench: needs 2 cores (server on one, load on the other)", file=sys.stderr)
        return 2
    raise_nofile_limit()
    # SIGTERM unwinds like Ctrl+C, so every server and upstream started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    variants = {}
    for item in args.variant:
        name, _, folder = item.partition("=")
        variants[name] = Path(folder).resolve()
    selected = scenarios(args.quick)
    if args.scenarios:
        wanted = args.scenarios.split(",")
        selected = [s for s in selected if s.key in wanted]
    if args.stacks:
        keep = set(args.stacks.split(","))
        selected = [dataclasses.replace(s, stacks=tuple(x for x in s.stacks if x in keep))
                    for s in selected]
        selected = [s for s in selected if s.stacks]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    logs = args.out / f"bench-{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.quick, args.repeats or (1 if args.quick else 3), logs, variants)
    started_at = time.monotonic()
    title = report.header(args.quick, bench.repeats, SERVER_CORE, LOAD_CORE)
    print(title, flush=True)
    if any(s.key == "S1" for s in selected):
        print(identity.report(), flush=True)  # beside S1 with users on and off
    try:
        bench.run(selected)
    finally:
        text = report.summary(title, selected, bench.results, args.quick,
                              time.monotonic() - started_at)
        print("\n" + text)
        report.write(args.out, stamp, title, text, bench.results, logs)
    failed = any(not r["verification"]["ok"] or r["errors"]
                 for per in bench.results.values() for rs in per.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
