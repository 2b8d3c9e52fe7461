"""`make bench-profile` (`python -m bench.profile S1`): where a server's CPU goes under a
bench scenario, sampled with py-spy, summarised as the top frames by self and total time.

A point is run exactly as `make bench` runs it (server on core 0, load on core 1); py-spy
samples the server during the loadgen's run with `--nonblocking` (it never pauses the
server, so its timing is undisturbed; a few stacks may be torn, read while they changed;
self times are reliable, totals approximate; blocking mode, which needs root, skews the
samples towards `asyncio.timeout()`'s one-line factory, a sampling artefact),
writing collapsed stacks, which `summarize` reads:
self = samples where the function is the innermost frame, total = samples where it is
anywhere on the stack (counted once per sample). Percentages are of the non-idle samples
(py-spy leaves out samples where the loop waits in epoll).

`python -m bench.profile summarize FILE` summarises any `py-spy record --format raw` file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .processes import (
    LOAD_CORE,
    PY,
    ROOT,
    SERVER_CORE,
    fake_upstream,
    server_argv,
    serving,
)
from .scenarios import scenarios

WARMUP = 3.0  # seconds of load before sampling starts
_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def summarize(path: Path, top: int = 10, under: str | None = None) -> str:
    """Top frames by self and by total time from collapsed stacks (`a;b;c count` lines).

    `under`: count only samples whose stack holds a frame containing this text.
    """
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [_FRAME_LINE.sub(")", f) for f in stack.split(";")]
        if under is not None and not any(under in f for f in frames):
            continue
        samples += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            total_time[frame] += count
    if not samples:
        return "no samples"
    out = [f"{samples} samples" + (f" under {under!r}" if under else "")]
    out.append(f"\ntop {top} by self time:")
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    out.append(f"\ntop {top} by total time (excluding the event loop's own frames):")
    skip = ("runpy", "asyncio/runners.py", "run_until_complete", "run_forever", "_run_once",
            "Handle._run", "<module>", "main (", "run_app (", "serve (")
    ranked = [(f, n) for f, n in total_time.most_common() if not any(s in f for s in skip)]
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in ranked[:top]]
    return "\n".join(out)


def profile(scenario_key: str, stack: str, seconds: float, out: Path, top: int,
            variants: dict[str, Path]) -> str:
    """Run one bench point with py-spy on the server; returns the summary."""
    chosen = next(s for s in scenarios(quick=False) if s.key == scenario_key)
    duration = ("--duration", f"{seconds:g}", "--warmup", f"{WARMUP:g}")
    load = list(chosen.load)
    if "--duration" in load:
        i = load.index("--duration")
        del load[i:i + 2]
        i = load.index("--warmup")
        del load[i:i + 2]
        load += duration
    chosen = dataclasses.replace(chosen, load=tuple(load))
    env = dict(os.environ)
    with contextlib.ExitStack() as ctx:
        if chosen.upstream:
            ctx.enter_context(fake_upstream(chosen, env, out.with_suffix(".upstream.log")))
        argv, cwd = server_argv(stack, chosen, variants)
        server, url = ctx.enter_context(
            serving(argv, SERVER_CORE, env, out.with_suffix(".server.log"), cwd))
        time.sleep(0.3)
        load_process = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, PY, "-m", "sseserver.loadgen",
             url, *chosen.load, "--server-pid", str(server.pid)],
            cwd=ROOT, env=env)
        # Past the warm-up: the first requests import modules and build pydantic schemas.
        time.sleep(WARMUP)
        subprocess.run(
            ["taskset", "-c", LOAD_CORE, _py_spy(), "record", "--nonblocking", "--function",
             "--format", "raw", "--rate", "100",
             "--duration", f"{max(1, int(seconds - WARMUP - 1))}",
             "--pid", str(server.pid), "--output", str(out)],
            check=True, stdout=subprocess.DEVNULL)
        load_process.wait(timeout=seconds + 60)
    return summarize(out, top)


def _py_spy() -> str:
    """py-spy beside this Python (a venv's bin/ is often not on PATH), else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="profile the server under one bench scenario")
    run.add_argument("scenario", help="S1, S3, S5a, ...")
    run.add_argument("--stack", default="sseserver")
    run.add_argument("--seconds", type=float, default=12.0)
    run.add_argument("--top", type=int, default=10)
    run.add_argument("--variant", action="append", default=[], metavar="NAME=DIR")
    run.add_argument("--out", type=Path, default=ROOT / "artifacts")
    show = sub.add_parser("summarize", help="summarise a py-spy raw (collapsed) file")
    show.add_argument("file", type=Path)
    show.add_argument("--top", type=int, default=10)
    show.add_argument("--under", help="only samples whose stack holds this text")
    args = parser.parse_args(argv)
    if args.command == "summarize":
        print(summarize(args.file, args.top, args.under))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {n: Path(d).resolve() for n, _, d in (v.partition("=") for v in args.variant)}
    out = args.out / f"profile-{args.scenario}-{args.stack}.txt"
    print(profile(args.scenario, args.stack, args.seconds, out, args.top, variants))
    print(f"\ncollapsed stacks: {out} (speedscope.app and flamegraph.pl read them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
