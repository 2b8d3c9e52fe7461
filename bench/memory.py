"""`make bench-memory` (`python -m bench.memory`): what one open stream holds in memory,
by allocation site, for sseserver and for aiohttp's plain StreamResponse loop ("raw").

S2 and S4 (issue 6) measure RSS per connection; this says where it goes. The server runs
in this process with `tracemalloc` on, on asyncio's own loop (uvloop's transports live in C,
where tracemalloc cannot see them); the load is `python -m sseserver.loadgen` in a child
process: N streams of a paced demo reply, all open at once. Once they are, a snapshot is
compared with one taken before the load: the difference, divided by N, is what each open
stream holds, grouped by the line that allocated it.

RSS here is inflated by tracemalloc's own bookkeeping; the traced bytes are the measure.
All load goes to 127.0.0.1 and stops by itself (--timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import linecache
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from typing import Final

from aiohttp import web

from bench.peers.common import PeerOptions
from bench.peers.raw_aiohttp import make_app as raw_app
from sseserver.app import create_app
from sseserver.config import Settings

from .run import free_port

PACE_MS: Final = 1000  # one event a second, as in S2
TOKENS: Final = 60  # long enough that every stream is still open at the snapshot
SETTLE: Final = 8.0  # seconds after the load started: every stream open, ~8 frames each


@contextlib.asynccontextmanager
async def _server(stack: str, port: int) -> AsyncIterator[None]:
    if stack == "raw":
        app = raw_app(PeerOptions("127.0.0.1", port, PACE_MS / 1000, TOKENS))
    else:
        app = create_app(Settings(port=port, demo_delay_ms=PACE_MS, demo_tokens=TOKENS))
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        yield
    finally:
        await runner.cleanup()


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.split("site-packages/")[-1].split("/lib/python3")[-1]
    line = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{name}:{frame.lineno}  {line[:70]}"


async def measure(stack: str, streams: int, top: int, settle: float = SETTLE) -> str:
    """Per-stream memory of `stack` ("sseserver" or "raw") with `streams` open streams."""
    port = free_port()
    async with _server(stack, port):
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        load = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sseserver.loadgen", f"http://127.0.0.1:{port}",
            "-c", str(streams), "-n", str(streams), "--expect-messages", str(TOKENS),
            "--pace-ms", str(PACE_MS), "--timeout", str(settle + 30),
            stdout=subprocess.DEVNULL,
        )
        try:
            await asyncio.sleep(settle)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            load.kill()
            await load.wait()
            tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in diff) / streams
    out = [f"{stack}: {total / 1024:.2f} KiB per open stream (traced, {streams} streams "
           f"after {settle:g} s of one event per second)", "    bytes  objects  allocated at"]
    for stat in diff[:top]:
        out.append(f"  {stat.size_diff / streams:7.0f}  {stat.count_diff / streams:7.2f}  "
                   f"{_where(stat.traceback[0])}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="sseserver and/or raw (default: both)")
    parser.add_argument("-n", "--streams", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25, help="allocation sites shown")
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds of load before the snapshot")
    args = parser.parse_args(argv)
    unknown = set(args.stacks) - {"sseserver", "raw"}
    if unknown:
        parser.error(f"unknown stack(s): {', '.join(sorted(unknown))}")
    for stack in args.stacks or ["sseserver", "raw"]:
        print(asyncio.run(measure(stack, args.streams, args.top, args.settle)), flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
