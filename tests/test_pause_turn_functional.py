"""pause_turn: the server continues a paused turn itself, sending the reply so far back
as the assistant turn. The reader sees one stream and one reply; the fake counts the
upstream requests and checks what each continuation carries."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from sseserver.providers import anthropic_reply

from .conftest import StartServer
from .support.fake_anthropic import (
    FakeAnthropic,
    Reply,
    ServerToolUse,
    Text,
    Thinking,
    WebSearchResult,
    count_output_tokens,
    web_citation,
    web_result,
)
from .support.fake_blocks import output_text
from .support.sse_client import open_sse
from .test_fake_content import assert_message_param

SOURCE = "https://example.org/page"
USER = {"role": "user", "content": "Research this."}


def _search(number: int) -> tuple[ServerToolUse, WebSearchResult]:
    tool_id = f"srvtoolu_{number:02d}"
    return (ServerToolUse(tool_id, {"query": f"query {number}"}),
            WebSearchResult(tool_id, [web_result(f"Result {number}", f"{SOURCE}/{number}")]))


PAUSED_1 = Reply(blocks=(Thinking(["Plan: ", "search."]), *_search(1)), stop_reason="pause_turn")
PAUSED_2 = Reply(
    blocks=(Text(["Found one. "], citations=[web_citation(SOURCE + "/1", "Result 1", "one")]),
            *_search(2)),
    stop_reason="pause_turn",
)
FINAL = Reply(chunks=["All ", "done."])


async def _start(server_url: str, body: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server_url + "/api/streams", json=body
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


async def test_paused_twice_then_ended_is_one_stream_and_three_requests(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, web_search=5)
    fake_anthropic.enqueue(PAUSED_1, PAUSED_2, FINAL)
    url = await _start(server.url, {"messages": [USER], "web_search": 4})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()

    assert stream.types() == [
        "meta", "thinking", "thinking", "tool", "tool_result",  # request 1
        "message", "citation", "tool", "tool_result",  # request 2
        "message", "message", "usage", "done",  # request 3
    ]
    assert stream.text == "Found one. All done."
    ids = [int(e.last_event_id.rsplit(":", 1)[1]) for e in stream.events]
    assert ids == list(range(len(ids)))  # one stream, one sequence
    usage = json.loads(stream.events[-2].data)
    replies = (PAUSED_1, PAUSED_2, FINAL)
    assert usage == {
        "input_tokens": 3 * 12,  # each request is billed its input
        "output_tokens": sum(count_output_tokens(output_text(r.content_blocks))
                             for r in replies),
        "stop_reason": "end_turn",
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "thinking_tokens": count_output_tokens(["Plan: ", "search."]),
        "web_search_requests": 2,
        "web_fetch_requests": 0,
        "stop_details": None,
    }

    assert fake_anthropic.request_count == 3
    bodies = [r.body for r in fake_anthropic.requests]
    assert bodies[0]["messages"] == [USER]
    # Each continuation carries the reply so far, exactly as the API returned it
    # (signatures and encrypted content included), as one assistant turn.
    so_far = PAUSED_1.content()
    assert bodies[1]["messages"] == [USER, {"role": "assistant", "content": so_far}]
    so_far = so_far + PAUSED_2.content()
    assert bodies[2]["messages"] == [USER, {"role": "assistant", "content": so_far}]
    for body in bodies[1:]:
        assert_message_param(body["messages"][-1])
    # The reply's search budget is shared by its requests: 4, then 3, then 2 left.
    assert [b["tools"][0]["max_uses"] for b in bodies] == [4, 3, 2]
    assert all(b["thinking"] == bodies[0]["thinking"] for b in bodies)
    assert all(b["cache_control"] == {"type": "ephemeral", "ttl": "5m"} for b in bodies)


async def test_a_cancel_during_a_continuation_closes_that_request_at_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, web_search=2)
    fake_anthropic.enqueue(PAUSED_1, Reply(chunks=["tok "] * 500, delay=0.02))
    url = await _start(server.url, {"messages": [USER], "web_search": "on"})
    async with await open_sse(server.url + url) as stream:
        while (await stream.next_event()) is not None and stream.types().count("message") < 3:
            pass
        asked_at = time.monotonic()
        async with aiohttp.ClientSession() as session, session.delete(server.url + url) as r:
            assert r.status == 204
        closed_at = await fake_anthropic.wait_closed(1, timeout=2)
        await stream.read_all()
    latency_ms = (closed_at - asked_at) * 1000
    print(f"DELETE closed the continuation's request in {latency_ms:.1f} ms")
    assert latency_ms < 100
    assert fake_anthropic.request_count == 2
    assert fake_anthropic.requests[1].deltas_sent < 500
    assert stream.types()[-2:] == ["usage", "done"]
    usage = json.loads(stream.events[-2].data)
    assert usage["stop_reason"] == "cancelled"
    assert usage["input_tokens"] == 2 * 12  # both requests' input, known at their start
    assert usage["web_search_requests"] == 1


async def test_continuations_are_bounded(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """At most five continuations: a turn that keeps pausing ends as it paused."""
    server = await start_server(fake=fake_anthropic, web_search=10)
    paused = Reply(chunks=["more "], stop_reason="pause_turn")
    fake_anthropic.enqueue(*[paused] * 8)
    async with await open_sse(f"{server.url}/api/sse?message=hi&web_search=on") as stream:
        await stream.read_all()
    assert fake_anthropic.request_count == 6
    assert stream.text == "more " * 6
    assert json.loads(stream.events[-2].data)["stop_reason"] == "pause_turn"
    assert stream.types()[-1] == "done"


async def test_each_continuation_asks_for_what_is_left_of_the_reply_s_max_tokens(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """A reply's max_tokens bounds the reply, however many requests it takes: a turn that
    pauses every time used to ask for the full max_tokens again on each continuation (6
    requests of 1,024 for a reply asked to stay within 1,024)."""
    server = await start_server(fake=fake_anthropic, web_search=10)
    paused = Reply(chunks=["more "], stop_reason="pause_turn", output_tokens=300)
    fake_anthropic.enqueue(*[paused] * 6)
    query = "/api/sse?message=hi&web_search=on&max_tokens=700&thinking=off"
    async with await open_sse(server.url + query) as stream:
        await stream.read_all()
    assert [r.body["max_tokens"] for r in fake_anthropic.requests] == [700, 400, 100]
    usage = json.loads(stream.events[-2].data)
    assert (usage["output_tokens"], usage["stop_reason"]) == (900, "pause_turn")


async def test_no_continuation_once_the_reply_s_searches_are_spent(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, web_search=3)
    fake_anthropic.enqueue(PAUSED_1, FINAL)
    async with await open_sse(f"{server.url}/api/sse?message=hi&web_search=1") as stream:
        await stream.read_all()
    assert fake_anthropic.request_count == 1
    assert fake_anthropic.pending == 1
    assert json.loads(stream.events[-2].data)["stop_reason"] == "pause_turn"


async def test_without_web_search_a_pause_is_not_continued(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """pause_turn comes only from server tools; without them there is nothing kept to
    continue with, and nothing is kept per delta."""
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["odd"], stop_reason="pause_turn"), FINAL)
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert fake_anthropic.request_count == 1
    assert json.loads(stream.events[-2].data)["stop_reason"] == "pause_turn"


async def test_a_reply_too_large_to_resend_is_not_continued(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is kept for a continuation is bounded in bytes: past the bound the reply
    ends as it paused, and the kept blocks are let go."""
    monkeypatch.setattr(anthropic_reply, "MAX_KEPT_BYTES", 4096)
    server = await start_server(fake=fake_anthropic, web_search=3)
    large = Reply(blocks=(*_search(1), Text(["x" * 1000] * 5)), stop_reason="pause_turn")
    fake_anthropic.enqueue(large, FINAL)
    async with await open_sse(f"{server.url}/api/sse?message=hi&web_search=on") as stream:
        await stream.read_all()
    assert fake_anthropic.request_count == 1
    assert stream.text == "x" * 5000
    assert json.loads(stream.events[-2].data)["stop_reason"] == "pause_turn"
