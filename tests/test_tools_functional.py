"""Tools through the real server (docs/protocol.md, "Tools"): an operator's tool the server
runs, called and answered within one stream; one the client runs, answered by a second
request; each call streaming as it forms; exact resume; a handler run once per call,
cancelled with its reply; and every reply's max_tokens bounding all of its requests."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from sseserver.tools.definitions import ToolSpec, tool_specs

from .conftest import StartServer
from .support.fake_anthropic import (
    FakeAnthropic,
    Reply,
    Text,
    Thinking,
    ToolUse,
    count_output_tokens,
)
from .support.fake_blocks import output_text
from .support.sse_client import SSEStream, open_sse
from .support.tool_handlers import RUNS
from .test_fake_content import assert_message_param

USER = {"role": "user", "content": "What is the answer?"}
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def _tools(**handlers: str | None) -> tuple[ToolSpec, ...]:
    """One tool per keyword: its name, and its handler in tests.support.tool_handlers (None: the
    client runs it)."""
    return tool_specs([
        {"name": name, "description": f"{name} things", "input_schema": SCHEMA}
        | ({"handler": f"tests.support.tool_handlers:{handler}"} if handler else {})
        for name, handler in handlers.items()
    ])


def _calls(name: str, tool_id: str = "toolu_01", preface: str = "Let me look. ") -> Reply:
    return Reply(blocks=(Text([preface]), ToolUse(tool_id, name, {"q": "life"})),
                 stop_reason="tool_use")


ANSWER = Reply(chunks=["The answer ", "is 42."])


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.reset()


async def _post(server_url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        server_url + "/api/streams", json=body
    ) as response:
        return response.status, await response.json()


def _data(stream: SSEStream, kind: str) -> list[Any]:
    return [json.loads(e.data) for e in stream.events if e.type == kind]


async def test_a_server_tool_is_called_and_answered_in_one_stream(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="lookup"), **backend)
    fake_anthropic.enqueue(_calls("lookup"), ANSWER)
    async with await open_sse(server.url + "/api/sse?message=What+is+the+answer%3F") as stream:
        await stream.read_all()

    assert stream.types() == [
        "meta", "message", "tool_start", "tool_input", "tool_input", "tool_input", "tool",
        "tool_result", "message", "message", "usage", "done",
    ]
    assert stream.text == "Let me look. The answer is 42."
    assert _data(stream, "tool_start") == [{"id": "toolu_01", "name": "lookup"}]
    assert "".join(d["delta"] for d in _data(stream, "tool_input")) == '{"q": "life"}'
    assert _data(stream, "tool") == [{"id": "toolu_01", "name": "lookup", "input": {"q": "life"}}]
    assert _data(stream, "tool_result") == [
        {"tool_use_id": "toolu_01", "name": "lookup", "content": "answer to life: 42"}
    ]
    assert RUNS.inputs == [{"q": "life"}]
    usage = _data(stream, "usage")[0]
    assert usage["input_tokens"] == 24  # both requests' input
    assert usage["output_tokens"] == sum(
        count_output_tokens(output_text(r.content_blocks)) for r in (_calls("lookup"), ANSWER)
    )
    assert usage["stop_reason"] == "end_turn"

    first, second = (r.body for r in fake_anthropic.requests)
    assert first["tools"] == [
        {"name": "lookup", "description": "lookup things", "input_schema": SCHEMA}
    ]
    assert second["messages"] == [
        {"role": "user", "content": "What is the answer?"},
        {"role": "assistant", "content": _calls("lookup").content()},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "answer to life: 42"}
        ]},
    ]
    for message in second["messages"][1:]:
        assert_message_param(message)
    # The reply's max_tokens bounds both requests: the second asks for what is left.
    spent = count_output_tokens(output_text(_calls("lookup").content_blocks))
    assert (first["max_tokens"], second["max_tokens"]) == (1024, 1024 - spent)


async def test_a_cut_after_the_call_resumes_exactly_and_runs_the_handler_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5,
                                tools=_tools(lookup="lookup"), **backend)
    fake_anthropic.enqueue(_calls("lookup"), Reply(chunks=["The answer ", "is 42."], delay=0.05))
    status, body = await _post(server.url, {"messages": [USER]})
    assert status == 201
    first = await open_sse(server.url + body["url"])
    while (event := await first.next_event()) is not None and event.type != "tool":
        pass
    await first.close()
    async with await open_sse(server.url + body["url"],
                              headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    async with await open_sse(server.url + body["url"]) as whole:
        await whole.read_all()
    assert first.types() + second.types() == whole.types()
    assert [e.data for e in first.events + second.events] == [e.data for e in whole.events]
    assert first.text + second.text == "Let me look. The answer is 42."
    assert RUNS.inputs == [{"q": "life"}]  # one run, however many readers
    assert fake_anthropic.request_count == 2


async def test_with_thinking_the_continuation_keeps_the_signed_thinking_block(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="lookup"),
                                max_tokens=4096)
    calls = Reply(blocks=(Thinking(["I should ", "look it up."]),
                          ToolUse("toolu_07", "lookup", {"q": "life"})), stop_reason="tool_use")
    fake_anthropic.enqueue(calls, ANSWER)
    query = "/api/sse?message=Think&thinking=2048&max_tokens=4096"
    async with await open_sse(server.url + query) as stream:
        await stream.read_all()
    assert stream.types()[-2:] == ["usage", "done"], stream.events
    assert stream.text == "The answer is 42."
    assert fake_anthropic.request_count == 2
    assert [r.status for r in fake_anthropic.requests] == [200, 200]
    sent_back = fake_anthropic.requests[1].body["messages"][1]
    assert sent_back == {"role": "assistant", "content": calls.content()}
    assert sent_back["content"][0]["signature"]  # what the fake checks


async def test_the_fake_refuses_a_continuation_without_its_thinking_block(
    fake_anthropic: FakeAnthropic,
) -> None:
    """The rule the test above relies on: the fake enforces it as the API does."""
    body = {
        "model": "claude-sonnet-5-5", "max_tokens": 4096, "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 2048, "display": "summarized"},
        "messages": [USER,
                     {"role": "assistant", "content": [ToolUse("toolu_1", "x", {}).content()]},
                     {"role": "user", "content": [
                         {"type": "tool_result", "tool_use_id": "toolu_1", "content": "y"}]}],
    }
    headers = {"x-api-key": fake_anthropic.api_key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session, session.post(
        fake_anthropic.base_url + "/v1/messages", json=body, headers=headers
    ) as response:
        assert response.status == 400
        assert "must start with a thinking block" in (await response.json())["error"]["message"]


@pytest.mark.parametrize(
    ("handler", "settings", "content", "logged"),
    [("broken", {}, "The tool failed.", "tool lookup (toolu_01) failed: RuntimeError"),
     ("bad_image", {}, "The tool returned a result this server cannot send.",
      "tool lookup (toolu_01) returned a list that is not text and image blocks (an image's "
      "data is base64 of its type)"),
     ("slow", {"tool_timeout": 0.2}, "The tool did not answer in time.",
      "tool lookup (toolu_01) timed out after 0.2s")],
    ids=["raises", "bad-image", "times-out"],
)
async def test_a_failing_handler_becomes_an_error_result_and_the_reply_goes_on(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture,
    handler: str, settings: dict[str, Any], content: str, logged: str,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup=handler), **settings)
    fake_anthropic.enqueue(_calls("lookup"), ANSWER)
    with caplog.at_level(logging.INFO):
        async with await open_sse(server.url + "/api/sse?message=Go") as stream:
            await stream.read_all()
    assert _data(stream, "tool_result") == [
        {"tool_use_id": "toolu_01", "name": "lookup", "content": content, "is_error": True}
    ]
    assert stream.text == "Let me look. The answer is 42."
    result = fake_anthropic.requests[1].body["messages"][2]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_01", "content": content,
                      "is_error": True}
    messages = [r.getMessage() for r in caplog.records]
    assert logged in messages
    assert not any("secret internal detail" in m or "Traceback" in m for m in messages)
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)


async def test_stop_during_a_slow_handler_cancels_it_at_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="slow"), **backend)
    fake_anthropic.enqueue(_calls("lookup"), ANSWER)
    status, body = await _post(server.url, {"messages": [USER]})
    assert status == 201
    async with await open_sse(server.url + body["url"]) as stream:
        await asyncio.wait_for(RUNS.started.wait(), 5)
        asked_at = time.monotonic()
        async with aiohttp.ClientSession() as session, session.delete(
            server.url + body["url"]
        ) as response:
            assert response.status == 204
        await stream.read_all()
    assert RUNS.cancelled_at is not None
    latency_ms = (RUNS.cancelled_at - asked_at) * 1000
    print(f"handler cancelled {latency_ms:.1f} ms after DELETE")
    assert latency_ms < 100
    assert _data(stream, "usage")[0]["stop_reason"] == "cancelled"
    # The call's request had ended; no continuation was asked for, so nothing upstream runs.
    assert fake_anthropic.requests[0].completed_at is not None
    await asyncio.sleep(0.2)
    assert fake_anthropic.request_count == 1


async def test_a_client_tool_ends_the_reply_with_its_turn_and_the_client_continues(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(locate=None), **backend)
    calls = _calls("locate", "toolu_c1", "Asking your browser. ")
    fake_anthropic.enqueue(calls, Reply(chunks=["You are ", "in Paris."]))
    status, body = await _post(server.url, {"messages": [USER]})
    assert status == 201
    async with await open_sse(server.url + body["url"]) as first:
        await first.read_all()
    assert first.types()[-4:] == ["tool", "turn", "usage", "done"]
    turn = _data(first, "turn")[0]
    assert turn == {"role": "assistant", "content": calls.content()}
    assert _data(first, "usage")[0]["stop_reason"] == "tool_use"

    answer = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_c1", "content": "Paris, fr-FR"}
    ]}
    status, body = await _post(server.url, {"messages": [USER, turn, answer]})
    assert status == 201
    async with await open_sse(server.url + body["url"]) as second:
        await second.read_all()
    assert second.text == "You are in Paris."
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "What is the answer?"}, turn, answer,
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([{"type": "tool_result", "tool_use_id": "toolu_forged", "content": "x"}],
         "messages[2].content has a tool_result for 'toolu_forged', which is not a tool_use "
         "of messages[1]."),
        ([{"type": "text", "text": "no results"}],
         "messages[2].content must answer every tool_use of messages[1]; unanswered: "
         "'toolu_c1'."),
        ([{"type": "text", "text": "first"},
          {"type": "tool_result", "tool_use_id": "toolu_c1", "content": "x"}],
         "messages[2].content must start with its tool_result blocks."),
        ([{"type": "tool_result", "tool_use_id": "toolu_c1", "content": 5}],
         "messages[2].content[0].content must be a string or a list of text and image blocks."),
        ([{"type": "tool_result", "tool_use_id": "toolu_c1", "is_error": "yes"}],
         "messages[2].content[0].is_error must be true or false."),
        ([{"type": "tool_use", "id": "toolu_x", "name": "locate", "input": {}}],
         "messages[2].content[0].type 'tool_use' is not allowed in a user message; allowed: "
         "text, image, document, tool_result, tool_approval."),
    ],
    ids=["forged-id", "unanswered", "results-not-first", "bad-content", "bad-is-error",
         "user-tool-use"],
)
async def test_a_bad_tool_result_is_refused_before_any_upstream_request(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    answer: list[dict[str, Any]], message: str,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(locate=None))
    turn = {"role": "assistant", "content": _calls("locate", "toolu_c1").content()}
    status, body = await _post(server.url, {
        "messages": [USER, turn, {"role": "user", "content": answer}],
    })
    assert (status, body["error"]) == (400, {"type": "invalid_request_error", "message": message})
    assert fake_anthropic.request_count == 0


async def test_a_call_of_a_tool_the_server_does_not_offer_is_refused(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(locate=None))
    turn = {"role": "assistant", "content": _calls("shell", "toolu_c1").content()}
    answer = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_c1", "content": "x"}]}
    status, body = await _post(server.url, {"messages": [USER, turn, answer]})
    assert status == 400
    assert body["error"]["message"] == (
        "messages[1].content[1] calls 'shell', which this server does not offer."
    )
    assert fake_anthropic.request_count == 0


async def test_max_tool_steps_bounds_the_requests_of_one_reply(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="lookup"),
                                max_tool_steps=3)
    fake_anthropic.enqueue(*(_calls("lookup", f"toolu_{i}") for i in range(4)))
    async with await open_sse(server.url + "/api/sse?message=Loop") as stream:
        await stream.read_all()
    assert fake_anthropic.request_count == 3
    assert len(RUNS.inputs) == 2  # the third call is not run: nothing would read its result
    assert _data(stream, "usage")[0]["stop_reason"] == "tool_use"
    assert stream.types()[-2:] == ["usage", "done"]


async def test_each_step_asks_for_what_is_left_of_the_replys_max_tokens(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="lookup"))
    fake_anthropic.enqueue(
        Reply(blocks=(ToolUse("toolu_1", "lookup", {"q": "a"}),), stop_reason="tool_use",
              output_tokens=300),
        Reply(blocks=(ToolUse("toolu_2", "lookup", {"q": "b"}),), stop_reason="tool_use",
              output_tokens=300),
        Reply(blocks=(ToolUse("toolu_3", "lookup", {"q": "c"}),), stop_reason="tool_use",
              output_tokens=300),
    )
    async with await open_sse(server.url + "/api/sse?message=Loop&max_tokens=700") as stream:
        await stream.read_all()
    assert [r.body["max_tokens"] for r in fake_anthropic.requests] == [700, 400, 100]
    assert _data(stream, "usage")[0]["output_tokens"] == 900
    assert len(RUNS.inputs) == 2  # nothing left after the third: its call is not run


async def test_the_demo_runs_its_server_tool_and_hands_its_client_tool_over(
    start_server: StartServer,
) -> None:
    server = await start_server()
    async with await open_sse(server.url + "/api/sse?message=What+time+is+it+in+Tokyo%3F"
                              "&thinking=off") as stream:
        await stream.read_all()
    result = _data(stream, "tool_result")[0]
    assert result["name"] == "current_time"
    assert result["content"].endswith("(Asia/Tokyo)")
    assert result["content"] in stream.text
    async with aiohttp.ClientSession() as session, session.get(server.url + "/healthz") as r:
        tools = (await r.json())["capabilities"]["tools"]
    assert tools == [
        {"name": "current_time", "runs": "server", "needs_approval": False},
        {"name": "browser_locale", "runs": "client", "needs_approval": False},
    ]


@pytest.mark.parametrize(
    ("approval", "result", "runs"),
    [({"approved": True}, {"content": "answer to life: 42"}, [{"q": "life"}]),
     ({"approved": False, "reason": "not now"},
      {"content": "The user denied this tool call. Reason: not now", "is_error": True}, [])],
    ids=["approved", "denied"],
)
async def test_a_tool_that_needs_approval_waits_for_the_users_decision(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    approval: dict[str, Any], result: dict[str, Any], runs: list[dict[str, Any]],
) -> None:
    tools = tool_specs([{"name": "lookup", "input_schema": SCHEMA, "needs_approval": True,
                         "handler": "tests.support.tool_handlers:lookup"}])
    server = await start_server(fake=fake_anthropic, tools=tools)
    fake_anthropic.enqueue(_calls("lookup"), ANSWER)
    status, body = await _post(server.url, {"messages": [USER]})
    async with await open_sse(server.url + body["url"]) as first:
        await first.read_all()
    turn = _data(first, "turn")[0]
    assert turn.pop("needs_approval") == ["toolu_01"]
    assert RUNS.inputs == []  # nothing runs before the user decides

    decision = {"role": "user", "content": [
        {"type": "tool_approval", "tool_use_id": "toolu_01"} | approval]}
    status, body = await _post(server.url, {"messages": [USER, turn, decision]})
    assert status == 201, body
    async with await open_sse(server.url + body["url"]) as second:
        await second.read_all()
    assert _data(second, "tool_result") == [
        {"tool_use_id": "toolu_01", "name": "lookup"} | result
    ]
    assert second.text == "The answer is 42."
    assert RUNS.inputs == runs
    assert fake_anthropic.requests[1].body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01"} | result
    ]}


async def test_an_approval_of_a_tool_that_needs_none_is_refused(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tools(lookup="lookup"))
    turn = {"role": "assistant", "content": _calls("lookup").content()}
    decision = {"role": "user", "content": [
        {"type": "tool_approval", "tool_use_id": "toolu_01", "approved": True}]}
    status, body = await _post(server.url, {"messages": [USER, turn, decision]})
    assert (status, body["error"]["message"]) == (
        400, "messages[2].content[0] approves a call of 'lookup', which needs no approval."
    )
    assert (fake_anthropic.request_count, RUNS.inputs) == (0, [])
