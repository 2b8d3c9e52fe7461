"""Prompt caching: on a three-turn conversation every request carries the cache marker,
placed so that the history is the cached prefix; usage, /metrics and the log line report
what the cache read and wrote."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.metrics_text import Samples, parse, value
from .support.sse_client import open_sse

# Long enough that the first prompt is above the API's 1,024-token caching minimum.
SYSTEM = "You answer questions about the HTML Standard, briefly and exactly. " * 80


async def scrape(server: RunningServer) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/metrics"
    ) as response:
        assert response.status == 200
        return parse(await response.text())


async def _turn(server: RunningServer, messages: list[dict[str, str]]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": messages, "system": SYSTEM}
    ) as response:
        url = (await response.json())["url"]
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    messages.append({"role": "assistant", "content": stream.text})
    usage: dict[str, Any] = json.loads(stream.events[-2].data)
    return usage


async def test_three_turns_read_their_history_from_the_cache(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sseserver.generations")
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(*(Reply(chunks=[f"Answer {n}."]) for n in range(3)))
    messages: list[dict[str, str]] = []
    usages = []
    for question in ("What is SSE?", "And its MIME type?", "Who defines it?"):
        messages.append({"role": "user", "content": question})
        usages.append(await _turn(server, messages))

    records = fake_anthropic.requests
    assert [r.cache_control for r in records] == [{"type": "ephemeral", "ttl": "5m"}] * 3
    caches = [r.cache for r in records]
    assert None not in caches
    first, second, third = (c for c in caches if c is not None)
    # Each turn reads the whole prompt of the turn before: its history is the prefix.
    assert (first.read, second.read, third.read) == (
        0, first.read + first.write, second.read + second.write
    )
    assert second.read > 1024
    for usage, cache in zip(usages, (first, second, third), strict=True):
        assert usage["cache_read_input_tokens"] == cache.read
        assert usage["cache_creation_input_tokens"] == cache.write
        assert usage["input_tokens"] == cache.uncached == 0
    # The history sent is the conversation as the client sent it, turn after turn.
    assert records[2].body["messages"][:4] == records[1].body["messages"] + [
        {"role": "assistant", "content": "Answer 1."}
    ]

    samples = await scrape(server)
    total_read = sum(u["cache_read_input_tokens"] for u in usages)
    total_write = sum(u["cache_creation_input_tokens"] for u in usages)
    assert value(samples, "sseserver_input_tokens_total", kind="cache_read") == total_read
    assert value(samples, "sseserver_input_tokens_total", kind="cache_write") == total_write
    assert value(samples, "sseserver_input_tokens_total", kind="uncached") == 0
    lines = [r.getMessage() for r in caplog.records if "generation id=" in r.getMessage()]
    assert len(lines) == 3
    assert f"cache_write={third.write} cache_read={third.read}" in lines[-1]
    assert "input_tokens=0" in lines[-1]


@pytest.mark.parametrize(("setting", "marker"), [
    ("off", None), ("1h", {"type": "ephemeral", "ttl": "1h"}),
])
async def test_the_prompt_cache_option(
    start_server: StartServer, fake_anthropic: FakeAnthropic, setting: str,
    marker: dict[str, str] | None,
) -> None:
    server = await start_server(fake=fake_anthropic, prompt_cache=setting)
    fake_anthropic.enqueue(Reply(chunks=["one"]), Reply(chunks=["two"]))
    messages = [{"role": "user", "content": "What is SSE?"}]
    first = await _turn(server, messages)
    messages.append({"role": "user", "content": "More?"})
    second = await _turn(server, messages)
    assert [r.cache_control for r in fake_anthropic.requests] == [marker, marker]
    if marker is None:
        assert [r.cache for r in fake_anthropic.requests] == [None, None]
        assert (second["input_tokens"], second["cache_read_input_tokens"]) == (12, 0)
    else:
        assert first["cache_creation_input_tokens"] > 1024
        assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    samples = await scrape(server)
    assert value(samples, "sseserver_input_tokens_total", kind="uncached") == (
        first["input_tokens"] + second["input_tokens"]
    )
