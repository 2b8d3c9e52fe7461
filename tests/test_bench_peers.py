"""The bench's peers must do exactly sseserver's workload: same tokens, same frame bytes,
or the comparison in `make bench` would not be like for like. The relay peers (the naive
Python SDK relay and the Node relay on @anthropic-ai/sdk) are run against the fake
Anthropic API, as the bench runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
from pathlib import Path

import pytest

from bench import node_sdk
from bench.peers.common import DEMO_TEXT, frame, meta, reply_tokens, to_json, usage
from bench.processes import PEERS, SERVER_CORE, fake_upstream, server_argv, serving
from bench.scenarios import Scenario
from sseserver.providers import demo
from sseserver.sse import encode_event
from sseserver.sse import to_json as sse_to_json

from .support.fake_anthropic import FakeAnthropic, Reply, count_output_tokens
from .support.processes import Processes, server_env
from .support.sse_client import open_sse
from .support.system_tools import NODE, NPM, missing, require


@pytest.mark.parametrize("question", ["Hello", "", "  spaced \n out  ", "ü" * 300])
def test_peers_stream_the_demo_providers_tokens(question: str) -> None:
    assert DEMO_TEXT == demo.DEMO_TEXT
    assert list(reply_tokens(question, None)) == list(demo.demo_tokens(question))


@pytest.mark.parametrize("data", ["token", ' "quoted" ', "ü€😀", {"a": [1, None]}])
def test_peers_write_sseservers_frame_bytes(data: object) -> None:
    assert to_json(data) == sse_to_json(data)
    assert frame("S", 7, "message", to_json(data)) == encode_event(
        "message", sse_to_json(data), "S:7"
    )


# -- the relay peers, against the fake Anthropic API ----------------------------------------------

# Every control character, JSON's escapes, non-ASCII and the line separators: each peer's JSON
# must escape exactly what sseserver's does.
RELAY_CHUNKS = ["".join(map(chr, range(32))), ' "quoted" \\ /', "ü€😀 中文", "\u2028\u2029\x7f",
                "tok "]


async def _relay_peer(peer: str, processes: Processes, fake: FakeAnthropic) -> str:
    """Start `peer` pointed at `fake`; its URL once it listens."""
    if peer == "node-relay":
        require(NODE, NPM)
        if not node_sdk.installed():
            missing("@anthropic-ai/sdk for the Node relay peer is not installed: run "
                    "`make node-deps` (python -m bench.node_sdk)")
    argv = [*PEERS[peer], "--port", "0", "--demo-delay-ms", "0", "--demo-tokens", "1"]
    server = await processes.spawn(argv, server_env(fake))
    assert server.process.stdout is not None
    async with asyncio.timeout(30):
        line = (await server.process.stdout.readline()).decode()
    match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
    assert match, f"no URL printed: {line!r}\n{server.log}"
    return match.group(1)


@pytest.mark.parametrize("peer", ["node-relay", "naive-relay"])
async def test_relay_peers_write_sseservers_frames_of_the_upstreams_text(
    peer: str, processes: Processes, fake_anthropic: FakeAnthropic,
) -> None:
    url = await _relay_peer(peer, processes, fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=RELAY_CHUNKS, input_tokens=7))
    async with await open_sse(f"{url}/api/sse?message=hello") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        events = await stream.read_all()
    sid = json.loads(events[0].data)["stream"]
    messages = [frame(sid, i, "message", to_json(text)) for i, text in enumerate(RELAY_CHUNKS, 1)]
    end = len(RELAY_CHUNKS) + 1
    output_tokens = count_output_tokens(RELAY_CHUNKS)
    assert bytes(stream.raw) == b"".join([
        b"retry: 3000\n\n", frame(sid, 0, "meta", meta(sid, "anthropic")), *messages,
        frame(sid, end, "usage", usage(7, output_tokens, "end_turn")),
        frame(sid, end + 1, "done", to_json("[DONE]")),
    ])
    assert fake_anthropic.requests[0].body["messages"] == [{"role": "user", "content": "hello"}]
    assert fake_anthropic.requests[0].api_key == fake_anthropic.api_key


@pytest.mark.parametrize("peer", ["node-relay", "naive-relay"])
async def test_relay_peers_pass_the_loadgens_checks(
    peer: str, processes: Processes, fake_anthropic: FakeAnthropic,
) -> None:
    """As `make bench` loads them: connections looping, every stream verified."""
    url = await _relay_peer(peer, processes, fake_anthropic)
    fake_anthropic.default_reply = Reply(chunks=["tok "] * 300)
    report = await processes.loadgen(url, "--connections", "5", "--streams", "20",
                                     "--expect-messages", "300", "--timeout", "60")
    assert report["verification"]["ok"], report["verification"]
    assert report["errors"] == {}
    assert report["streams"]["completed"] == 20


# -- every server the bench runs, on a port it picked itself -------------------------------------

# aiohttp-sse and sse-starlette (with uvicorn) are in the bench's lock, not the tests': make
# bench starts them through the same `serving()`, and fails the point if one prints no URL.
TEST_LOCK_STACKS = ("sseserver", *(peer for peer in PEERS
                                  if peer not in ("aiohttp-sse", "sse-starlette")))


@pytest.mark.parametrize("stack", TEST_LOCK_STACKS)
def test_the_bench_reads_each_servers_port_from_what_it_printed(
    stack: str, tmp_path: Path,
) -> None:
    """The bench starts every server with `--port 0` and reads the URL it printed: a port
    chosen by the bench and handed over could be taken by another process first. The relay
    peers (and sseserver with them) run against the fake upstream, as in S5."""
    relay = stack.endswith("-relay")
    if stack == "node-relay":
        require(NODE, NPM)
        if not node_sdk.installed():
            missing("@anthropic-ai/sdk for the Node relay peer is not installed: run "
                    "`make node-deps` (python -m bench.node_sdk)")
    scenario = Scenario("T", "three tokens", (stack,), delay_ms=0, tokens=3, load=(),
                        columns=(), upstream=relay)
    env = server_env()
    with contextlib.ExitStack() as running:
        if relay:
            running.enter_context(fake_upstream(scenario, env, tmp_path / "upstream.log"))
        argv, cwd = server_argv(stack, scenario, {})
        assert argv[argv.index("--port") + 1] == "0"
        log = tmp_path / "server.log"
        log.write_bytes(b"http://127.0.0.1:1 from an earlier run\n")  # the log is appended to
        _, url = running.enter_context(serving(argv, SERVER_CORE, env, log, cwd))
        with urllib.request.urlopen(f"{url}/api/sse?message=hi", timeout=30) as response:
            body = response.read().decode().replace("\r\n", "\n")  # two peers write CRLF
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert body.count("event: message\n") == 3, body
    assert body.endswith('event: done\ndata: "[DONE]"\n\n'), body
