"""Resume with Last-Event-ID in the middle of thinking, of a tool call and of cited text:
every event exactly once, in order, on each stream store (memory and Redis)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import (
    FakeAnthropic,
    Reply,
    ServerToolUse,
    Text,
    Thinking,
    WebSearchResult,
    web_citation,
    web_result,
)
from .support.sse_client import SSEStream, open_sse

SOURCE = "https://html.spec.whatwg.org/multipage/server-sent-events.html"
REPLY = Reply(
    blocks=(
        Thinking([f"thought {i}, " for i in range(8)]),
        ServerToolUse("srvtoolu_01", {"query": "server-sent events"}, pieces=6),
        WebSearchResult("srvtoolu_01", [web_result("HTML Standard", SOURCE)]),
        Text([f"cited {i} " for i in range(8)],
             citations=[web_citation(SOURCE, "HTML Standard", "EventSource")]),
        Text([" the end."]),
    ),
    delay=0.02,
)
# meta, 8 thinking, tool, tool_result, 8 messages, citation, message, usage, done
TYPES = ["meta", *["thinking"] * 8, "tool", "tool_result", *["message"] * 8, "citation",
         "message", "usage", "done"]


def _signature(stream: SSEStream) -> list[tuple[str, str, str]]:
    return [(e.type, e.data, e.last_event_id) for e in stream.events]


async def _post(server: RunningServer) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams",
        json={"messages": [{"role": "user", "content": "hi"}], "web_search": "on"},
    ) as response:
        assert response.status == 201
        return str((await response.json())["url"])


@pytest.mark.parametrize(
    ("cut_after", "where"),
    [(4, "thinking"), (10, "tool"), (14, "message")],
    ids=["mid-thinking", "mid-tool-call", "mid-cited-text"],
)
async def test_resume_mid_reply_gives_each_event_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
    cut_after: int, where: str,
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5, web_search=1, **backend)
    fake_anthropic.enqueue(REPLY)
    url = await _post(server)
    first = await open_sse(server.url + url)
    await first.take(cut_after)
    await first.close()
    assert first.events[-1].type == where
    async with await open_sse(server.url + url,
                              headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    async with await open_sse(server.url + url) as whole:  # the full stream, replayed
        await whole.read_all()
    assert whole.types() == TYPES
    assert _signature(first) + _signature(second) == _signature(whole)
    thinking = "".join(json.loads(e.data) for e in whole.events if e.type == "thinking")
    assert thinking == "".join(f"thought {i}, " for i in range(8))
    assert first.text + second.text == "".join(f"cited {i} " for i in range(8)) + " the end."
    assert fake_anthropic.request_count == 1  # no second generation
