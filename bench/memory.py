"""`make bench-memory` (`python -m bench.memory`): what one open stream holds in memory,
by allocation site, for sseserver (in memory, and on Redis: "sseserver-redis") and for
aiohttp's plain StreamResponse loop ("raw").

The bench's S2 and S4 measure RSS per connection; this says where it goes. The server runs
in this process with `tracemalloc` on, on asyncio's own loop (uvloop's transports live in C,
where tracemalloc cannot see them); the load is `python -m sseserver.loadgen` in a child
process: N streams of a paced demo reply, all open at once. Once they are, a snapshot is
compared with one taken before the load: the difference, divided by N, is what each open
stream holds, grouped by the line that allocated it; it also prints what sseserver holds
beyond raw aiohttp, and what the Redis store holds beyond the memory one, site by site.

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
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from bench.peers.common import PeerOptions
from bench.peers.raw_aiohttp import make_app as raw_app
from sseserver.app import create_app
from sseserver.config import Settings
from tests.support.redis_server import RedisServer

PACE_MS: Final = 1000  # one event a second, as in S2
TOKENS: Final = 60  # long enough that every stream is still open at the snapshot
SETTLE: Final = 8.0  # seconds after the load started: every stream open, ~8 frames each


STACKS: Final = ("sseserver", "sseserver-redis", "raw")


@contextlib.asynccontextmanager
async def _server(stack: str, redis_url: str | None) -> AsyncIterator[str]:
    """`stack` served on a port the kernel picks; its URL."""
    if stack == "raw":
        app = raw_app(PeerOptions("127.0.0.1", 0, PACE_MS / 1000, TOKENS))
    else:
        url = redis_url if stack == "sseserver-redis" else None
        app = create_app(Settings(port=0, demo_delay_ms=PACE_MS, demo_tokens=TOKENS,
                                  redis_url=url))
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.split("site-packages/")[-1].split("/lib/python3")[-1]
    line = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{name}:{frame.lineno}  {line[:70]}"


@dataclass(frozen=True)
class Footprint:
    """What each open stream of one stack holds: bytes and objects by allocation site."""

    stack: str
    streams: int
    settle: float
    by_site: dict[str, tuple[float, float]]  # site -> (bytes, objects) per stream

    @property
    def total(self) -> float:
        return sum(size for size, _ in self.by_site.values())


async def measure(stack: str, streams: int, settle: float = SETTLE,
                  redis_url: str | None = None) -> Footprint:
    """Per-stream memory of `stack` (one of STACKS) with `streams` open streams."""
    async with _server(stack, redis_url) as url:
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        load = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sseserver.loadgen", url,
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
    by_site: dict[str, tuple[float, float]] = {}
    for stat in after.compare_to(before, "lineno"):
        site = _where(stat.traceback[0])
        size, count = by_site.get(site, (0.0, 0.0))
        by_site[site] = (size + stat.size_diff / streams, count + stat.count_diff / streams)
    return Footprint(stack, streams, settle, by_site)


def report(footprint: Footprint, top: int) -> str:
    out = [f"{footprint.stack}: {footprint.total / 1024:.2f} KiB per open stream (traced, "
           f"{footprint.streams} streams after {footprint.settle:g} s of one event per second)",
           "    bytes  objects  allocated at"]
    ranked = sorted(footprint.by_site.items(), key=lambda item: -item[1][0])
    out += [f"  {size:7.0f}  {count:7.2f}  {site}" for site, (size, count) in ranked[:top]]
    return "\n".join(out)


def added(ours: Footprint, raw: Footprint, top: int) -> str:
    """What `ours` holds per stream beyond `raw`, by allocation site."""
    extra = {
        site: size - raw.by_site.get(site, (0.0, 0.0))[0]
        for site, (size, _) in ours.by_site.items()
    }
    ranked = sorted(extra.items(), key=lambda item: -item[1])
    out = [f"{ours.stack} - {raw.stack}: {(ours.total - raw.total) / 1024:.2f} KiB per open "
           "stream, by allocation site", "    bytes  allocated at"]
    out += [f"  {size:7.0f}  {site}" for site, size in ranked[:top] if size > 0]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*",
                        help=f"some of {', '.join(STACKS)} (default: all)")
    parser.add_argument("-n", "--streams", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25, help="allocation sites shown")
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds of load before the snapshot")
    args = parser.parse_args(argv)
    unknown = set(args.stacks) - set(STACKS)
    if unknown:
        parser.error(f"unknown stack(s): {', '.join(sorted(unknown))}")
    measured = {}
    with contextlib.ExitStack() as stack_of_servers:
        redis_url = None
        if "sseserver-redis" in (args.stacks or STACKS):
            redis = RedisServer()
            redis.start()
            stack_of_servers.callback(redis.close)
            redis_url = redis.url
        for stack in args.stacks or STACKS:
            measured[stack] = asyncio.run(measure(stack, args.streams, args.settle, redis_url))
            print(report(measured[stack], args.top), end="\n\n", flush=True)
    for ours, base in (("sseserver", "raw"), ("sseserver-redis", "sseserver")):
        if ours in measured and base in measured:
            print(added(measured[ours], measured[base], args.top), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
