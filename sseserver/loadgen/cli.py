"""The command line: `python -m sseserver.loadgen URL [options]`.

Prints the summary (or the report as JSON with `--json`) and exits 0 when every stream
that ended was verified and nothing failed, 1 otherwise, 2 on a bad option.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence

from .report import format_report
from .runner import LoadGen, Options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sseserver.loadgen",
        description="Load an SSE server and verify every stream it sends.",
    )
    p.add_argument("url", nargs="?", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("-c", "--connections", type=int, default=50,
                   help="concurrent connections, each running streams one after another")
    run = p.add_mutually_exclusive_group()
    run.add_argument("-d", "--duration", type=float, help="seconds to run (streams loop)")
    run.add_argument("-n", "--streams", type=int, help="streams to run in all, then stop")
    p.add_argument("--warmup", type=float,
                   help="seconds before measuring (default 1 with --duration, else 0)")
    p.add_argument("--measure", type=float, help="seconds to measure (default: the rest)")
    p.add_argument("--mode", choices=("sse", "streams"), default="sse",
                   help="sse: GET /api/sse?message=; streams: POST /api/streams, then GET it")
    p.add_argument("--message", default="Hello", help="the user message sent")
    p.add_argument("--drop-after", type=int, default=0, metavar="N",
                   help="cut each connection after N events, resume with Last-Event-ID")
    p.add_argument("--expect-events", type=int, help="events every stream must have")
    p.add_argument("--expect-messages", type=int, help="message events every stream must have")
    p.add_argument("--pace-ms", type=float,
                   help="the source's delay per token; enables the added-latency report")
    p.add_argument("--server-pid", type=int, help="report this process's CPU and RSS")
    p.add_argument("--connect-concurrency", type=int, default=100,
                   help="connects in flight at once (the server's listen backlog is finite)")
    p.add_argument("--timeout", type=float, help="hard bound on the run, in seconds")
    p.add_argument("-H", "--header", action="append", default=[],
                   help="extra request header, e.g. 'Authorization: Bearer T'")
    p.add_argument("--honor-retry-after", action="store_true",
                   help="after a 429 or 503 with Retry-After, a connection waits that long "
                        "(and up to as much again, at random) before its next stream, as "
                        "well-behaved clients do")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="event loop: auto = uvloop when installed, so the load generator "
                        "keeps idle CPU (default: auto)")
    return p


def _loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The event loop to run on: uvloop costs the load generator less CPU per event, so
    it stays further from being the bottleneck. Optional: stdlib-only runs work."""
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--loop uvloop: uvloop is not installed") from None
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration is None and args.streams is None:
        args.duration = 10.0
    options = Options(
        url=args.url, connections=args.connections, duration=args.duration,
        streams=args.streams, warmup=args.warmup, measure=args.measure, mode=args.mode,
        message=args.message, drop_after=args.drop_after, expect_events=args.expect_events,
        expect_messages=args.expect_messages, pace_ms=args.pace_ms,
        server_pid=args.server_pid, connect_concurrency=args.connect_concurrency,
        timeout=args.timeout, headers=tuple(args.header),
        honor_retry_after=args.honor_retry_after,
    )
    try:
        loop_name, factory = _loop_factory(args.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            report = runner.run(LoadGen(options).run())
        report["loadgen"]["loop"] = loop_name
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else format_report(report))
    ok = report["verification"]["ok"] and not report["errors"]
    return 0 if ok else 1
