"""Redis stream store beside the in-memory one: same load, same run (issue 4).

    python bench/redis_vs_memory.py [--streams 50] [--tokens 200]
                                    [--paced-streams 20] [--delay-ms 20]

Starts Debian's redis-server on a free port, a stamping fake of the Messages API (each
text delta is the time it was sent, in monotonic ns), and `python -m sseserver` once per
backend. Then, for each backend, two loads:

- paced: --paced-streams concurrent GET /api/sse, each --tokens deltas --delay-ms
  apart (a load well below saturation, 1000 events/s by default); per-event latency =
  arrival at the client - departure from the upstream (the same machine's monotonic
  clock), so it covers SDK -> pump -> store -> subscriber -> socket.
- flat out: --streams concurrent streams with no delay; events/s delivered to the clients.

A small self-contained client for now; `python -m sseserver.loadgen` (branch bench) can
take its place once merged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-ant-bench"


def _frame(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tokens, delay = request.app["tokens"], request.app["delay"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_frame("message_start", {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": body["model"],
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1}}}))
    await response.write(_frame("content_block_start", {
        "type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}))
    for _ in range(tokens):
        if delay:
            await asyncio.sleep(delay)
        await response.write(_frame("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": f"{time.monotonic_ns()} "}}))
    await response.write(_frame("content_block_stop", {"type": "content_block_stop", "index": 0}))
    await response.write(_frame("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": tokens}}))
    await response.write(_frame("message_stop", {"type": "message_stop"}))
    return response


async def _configure(request: web.Request) -> web.Response:
    request.app["tokens"] = int(request.query["tokens"])
    request.app["delay"] = float(request.query["delay_ms"]) / 1000
    return web.Response(text="ok")


def _upstream(port: int) -> None:
    app = web.Application()
    app["tokens"], app["delay"] = 10, 0.0
    app.router.add_post("/v1/messages", _messages)
    app.router.add_post("/configure", _configure)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(upstream: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSESERVER_", "ANTHROPIC_"))}
    env |= {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": upstream,
            "SSESERVER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0", "--provider", "anthropic",
         "--upstream-retries", "0", "--max-tokens", "100000", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    match = re.search(r"http://\S+", process.stdout.readline())
    assert match, "sseserver did not start"
    return process, match.group(0)


async def _one_stream(session: aiohttp.ClientSession, url: str, latencies: list[float]) -> int:
    events = 0
    buffer = b""
    async with session.get(url + "/api/sse?message=bench") as response:
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {await response.text()}")
        async for chunk in response.content.iter_any():
            now = time.monotonic_ns()
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                if b"event: error\n" in frame:
                    raise RuntimeError(frame.decode())
                if b"event: message\n" in frame:
                    stamp = json.loads(frame.rsplit(b"data: ", 1)[1])
                    latencies.append((now - int(stamp)) / 1e6)
                    events += 1
    return events


async def _load(server: str, upstream: str, streams: int, tokens: int, delay_ms: float
                ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(f"{upstream}/configure?tokens={tokens}&delay_ms={delay_ms}"):
            pass
        started = time.monotonic()
        counts = await asyncio.gather(*(_one_stream(session, server, latencies)
                                        for _ in range(streams)))
        elapsed = time.monotonic() - started
    assert sum(counts) == streams * tokens, f"{sum(counts)} of {streams * tokens} events"
    return sum(counts) / elapsed, latencies


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--paced-streams", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        print("redis-server is missing: apt-get install redis-server", file=sys.stderr)
        return 1
    redis_port = _free_port()
    workdir = tempfile.TemporaryDirectory(prefix="sseserver-bench-")
    redis = subprocess.Popen([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", workdir.name],
                             stdout=subprocess.DEVNULL)
    upstream_port = _free_port()
    upstream_process = multiprocessing.get_context("spawn").Process(
        target=_upstream, args=(upstream_port,), daemon=True)
    upstream_process.start()
    upstream = f"http://127.0.0.1:{upstream_port}"
    time.sleep(1.5)
    rows = []
    try:
        for backend, extra in (("memory", ()),
                               ("redis", ("--redis-url", f"redis://127.0.0.1:{redis_port}/0"))):
            server, url = _start_server(upstream, *extra)
            try:
                asyncio.run(_load(url, upstream, 5, 20, 0))  # warm up
                _, paced = asyncio.run(_load(url, upstream, args.paced_streams, args.tokens,
                                             args.delay_ms))
                rate, _ = asyncio.run(_load(url, upstream, args.streams, args.tokens, 0))
            finally:
                server.terminate()
                server.wait()
            rows.append((backend, rate, statistics.median(paced), _quantile(paced, 0.99),
                         max(paced)))
    finally:
        upstream_process.terminate()
        redis.terminate()
        redis.wait()
        workdir.cleanup()
    print(f"events/s: {args.streams} streams x {args.tokens} events, flat out; latency: "
          f"{args.paced_streams} streams x {args.tokens} events, one per {args.delay_ms:g} ms "
          "each, upstream to client")
    print(f"{'backend':8} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for backend, rate, p50, p99, worst in rows:
        print(f"{backend:8} {rate:10.0f} {p50:8.2f} {p99:8.2f} {worst:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
