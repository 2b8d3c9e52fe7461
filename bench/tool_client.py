"""S6's `fake-alone` point: the fake Anthropic API's own tool-call latency, with no relay.

N connections loop on the fake as S6's relay does, each reply calling the no-op tool until
the fake stops asking, but every `tool_use` is answered the moment its reply ends, with
the least work there is, on uvloop as the server runs: whole reads, not lines; text
deltas counted, not parsed; the tool_use blocks read from `content_block_start` and
`input_json_delta`; the continuation encoded and posted. The gaps the fake times are then
its own latency, and the loopback's, under the same arrivals: what S6's target is
measured beyond.

`python -m bench.tool_client URL --connections N --duration S [--expect-messages M]`
prints a report in the loadgen's `--json` shape, as far as a client that is not a reader
of SSE has its figures: streams, verification (every final reply has M text deltas).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from tests.support.fake_anthropic import DEFAULT_API_KEY

HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01",
           "content-type": "application/json"}
# S6's tool file, as the API gets it: the handler is the server's, not the API's.
TOOLS = [{k: v for k, v in tool.items() if k != "handler"}
         for tool in json.loads((Path(__file__).parent / "tools.json").read_text())]


async def _reply(session: aiohttp.ClientSession, url: str, messages: list[dict[str, Any]]
                 ) -> tuple[str | None, list[dict[str, Any]], int]:
    """One streamed reply: its stop reason, its content blocks, its text deltas."""
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                       "messages": messages, "tools": TOOLS}).encode()
    blocks: list[dict[str, Any]] = []
    partial: list[str] = []
    stop, texts = None, 0
    events: list[dict[str, Any]] = []
    async with session.post(url, data=body, headers=HEADERS) as response:
        response.raise_for_status()
        rest = b""
        async for chunk in response.content.iter_any():
            # Whole reads, not lines; text deltas counted, not parsed: the least work there is.
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if not line.startswith(b"data: "):
                    continue
                if b'"text_delta"' in line:
                    texts += 1
                else:
                    events.append(json.loads(line[6:]))
    for event in events:
        kind = event["type"]
        if kind == "content_block_start":
            blocks.append(event["content_block"])
            partial.append("")
        elif kind == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
            partial[-1] += event["delta"]["partial_json"]
        elif kind == "message_delta":
            stop = event["delta"]["stop_reason"]
    for block, raw in zip(blocks, partial, strict=True):
        if block["type"] == "tool_use":
            block["input"] = json.loads(raw) if raw else {}
    return stop, blocks, texts


async def _conversations(session: aiohttp.ClientSession, url: str, end: float,
                         expect: int, tally: dict[str, int]) -> None:
    while time.monotonic() < end:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
        tally["started"] += 1
        while True:
            stop, blocks, texts = await _reply(session, url, messages)
            tally["requests"] += 1
            if stop != "tool_use":
                break
            messages += [
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}
                    for b in blocks if b["type"] == "tool_use"]},
            ]
        tally["completed"] += 1
        if texts != expect:
            tally["wrong_count"] += 1


async def _run(url: str, connections: int, duration: float, expect: int) -> dict[str, Any]:
    tally = dict.fromkeys(("started", "completed", "requests", "wrong_count"), 0)
    end = time.monotonic() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(_conversations(session, f"{url}/v1/messages", end, expect,
                                              tally) for _ in range(connections)))
    return {
        "streams": {"started": tally["started"], "completed": tally["completed"]},
        "requests": tally["requests"],
        "verification": {"ok": tally["wrong_count"] == 0, "wrong_count": tally["wrong_count"]},
        "errors": {},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tool_client", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=0,
                        help="added to the duration: the client measures nothing itself")
    parser.add_argument("--expect-messages", type=int, default=100)
    args, _ = parser.parse_known_args(argv)
    report = uvloop.run(_run(args.url.rstrip("/"), args.connections,
                             args.duration + args.warmup, args.expect_messages))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
