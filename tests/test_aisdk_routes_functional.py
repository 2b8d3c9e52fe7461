"""The AI SDK's chat routes over HTTP, on each stream store (docs/protocol.md, "The AI SDK's
chat route"): the exact bytes of a reply, the reconnect (a replay from the start, or 204),
Stop, a new message superseding a running reply, the history mapping, and every refusal
with its status and JSON error. The SDK's own client is in test_aisdk_functional.py."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any, Final

import pytest
import redis.asyncio

from sseserver.app_keys import GENERATIONS, STORE
from sseserver.server_tools_config import mcp_servers
from sseserver.store.redis.store import RedisStore
from sseserver.tools.definitions import ToolSpec, tool_specs

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply, Silent
from .support.fake_blocks import (
    ENCRYPTED,
    SIGNATURE,
    BashResult,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    McpToolResult,
    McpToolUse,
    ServerToolUse,
    Text,
    TextEditorResult,
    ToolSearchResult,
    UnknownBlock,
    WebFetchResult,
)
from .support.http_client import request
from .support.metrics_text import parse, value
from .support.processes import Processes, processes
from .support.sse_client import SSEStream, open_sse
from .support.tool_handlers import RUNS

__all__ = ["processes"]

CHAT: Final = "chat-1"
TOKEN: Final = "chat-token-0123456789"


def _body(chat: str = CHAT, *texts: str, **extra: Any) -> bytes:
    """The DefaultChatTransport's body: the chat id, UI messages, trigger, messageId."""
    messages = [
        {"id": f"m{i}", "role": "user" if i % 2 == 0 else "assistant",
         "parts": [{"type": "text", "text": text}]}
        for i, text in enumerate(texts or ("hi",))
    ]
    return json.dumps({"id": chat, "messages": messages, "trigger": "submit-message",
                       **extra}).encode()


def _chunks(stream: SSEStream) -> list[Any]:
    return [json.loads(e.data) if e.data != "[DONE]" else "[DONE]" for e in stream.events]


async def _post(server: RunningServer | str, body: bytes) -> SSEStream:
    url = server if isinstance(server, str) else server.url
    return await open_sse(url + "/api/chat", method="POST", body=body)


def _expected(message_id: str, chunks: list[str], reason: str = "stop") -> bytes:
    """What an uninterrupted reply of these text deltas is, byte for byte."""
    def frame(data: str) -> str:
        return f"data: {data}\n\n"
    deltas = "".join(
        frame('{"type":"text-delta","id":"t1","delta":' + json.dumps(c, ensure_ascii=False)
              + "}") for c in chunks
    )
    return (
        frame('{"type":"start","messageId":"' + message_id + '"}')
        + frame('{"type":"start-step"}')
        + frame('{"type":"text-start","id":"t1"}')
        + deltas
        + frame('{"type":"text-end","id":"t1"}')
        + frame('{"type":"finish-step"}')
        + frame('{"type":"finish","finishReason":"' + reason + '"}')
        + frame("[DONE]")
    ).encode()


async def test_a_reply_is_the_ui_message_stream_byte_for_byte(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    chunks = ["Hi", ' "there"', "\n😀"]
    fake_anthropic.enqueue(Reply(chunks=chunks, stop_reason="max_tokens"))
    async with await _post(server, _body()) as stream:
        await stream.read_all()
    assert stream.status == 200
    assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.headers["X-Accel-Buffering"] == "no"
    message_id = _chunks(stream)[0]["messageId"]
    assert bytes(stream.raw) == _expected(message_id, chunks, reason="length")
    # The message id is the native stream's id.
    async with await open_sse(f"{server.url}/api/streams/{message_id}") as native:
        await native.read_all()
    assert native.text == "".join(chunks)


async def test_the_reconnect_replays_from_the_start_then_follows(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    chunks = [f"w{i} " for i in range(30)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.02))
    first = await _post(server, _body())
    await first.take(6)
    await first.close()
    async with await open_sse(f"{server.url}/api/chat/{CHAT}/stream") as again:
        await again.read_all()
    message_id = _chunks(again)[0]["messageId"]
    # The same bytes an uninterrupted reply gives: the same part ids, nothing twice.
    assert bytes(again.raw) == _expected(message_id, chunks)
    assert bytes(again.raw).startswith(bytes(first.raw))
    assert len(fake_anthropic.requests) == 1
    # Delivered: nothing is left to resume.
    status, _, body = await request("GET", f"{server.url}/api/chat/{CHAT}/stream")
    assert (status, body) == (204, b"")
    metrics = parse((await request("GET", server.url + "/metrics"))[2].decode())
    assert value(metrics, "sseserver_resumes_total") == 1
    assert value(metrics, "sseserver_subscribers_active") == 0
    assert value(metrics, "sseserver_disconnects_total", reason="client_gone") == 1
    assert value(metrics, "sseserver_events_sent_total") >= len(first.events) + len(again.events)


async def test_a_reply_that_ended_while_nobody_listened_is_given_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    fake_anthropic.enqueue(Reply(chunks=["a", "b", "c"], delay=0.05))
    first = await _post(server, _body())
    start = await first.take(1)
    await first.close()
    message_id = json.loads(start[0].data)["messageId"]
    async with await open_sse(f"{server.url}/api/streams/{message_id}") as native:
        await native.read_all()  # the reply has ended, with nobody on the chat route
    async with await open_sse(f"{server.url}/api/chat/{CHAT}/stream") as late:
        await late.read_all()
    assert bytes(late.raw) == _expected(message_id, ["a", "b", "c"])
    status, _, _ = await request("GET", f"{server.url}/api/chat/{CHAT}/stream")
    assert status == 204


async def test_the_reconnect_of_an_unknown_chat_is_204(
    start_server: StartServer, backend: dict[str, Any]
) -> None:
    server = await start_server(**backend)
    status, _, body = await request("GET", f"{server.url}/api/chat/never-seen/stream")
    assert (status, body) == (204, b"")


async def test_stop_cancels_the_upstream_and_the_reply_ends_in_abort(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    fake_anthropic.enqueue(Silent(chunks=["partial"]))
    stream = await _post(server, _body())
    await stream.take(4)  # start, start-step, text-start, the delta
    await fake_anthropic.wait_requests(1)
    started = asyncio.get_running_loop().time()
    status, _, body = await request("DELETE", f"{server.url}/api/chat/{CHAT}/stream")
    assert (status, body) == (204, b"")
    closed = await fake_anthropic.wait_closed(0)
    assert closed - started < 0.1
    await stream.read_all()
    await stream.close()
    assert _chunks(stream)[3:] == [
        {"type": "text-delta", "id": "t1", "delta": "partial"},
        {"type": "text-end", "id": "t1"},
        {"type": "finish-step"},
        {"type": "abort", "reason": "cancelled"},
        "[DONE]",
    ]
    # Stopped: a reconnect does not bring it back; a second Stop finds nothing.
    assert (await request("GET", f"{server.url}/api/chat/{CHAT}/stream"))[0] == 204
    status, _, body = await request("DELETE", f"{server.url}/api/chat/{CHAT}/stream")
    assert status == 404
    assert json.loads(body) == {"error": {"type": "not_found_error",
                                          "message": "This chat has no reply to stop."}}


async def test_a_new_message_supersedes_the_running_reply(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any]
) -> None:
    # One generation per client: the new message must not be refused for the old one.
    server = await start_server(fake=fake_anthropic, max_streams_per_client=1, **backend)
    fake_anthropic.enqueue(Silent(chunks=["first"]), Reply(chunks=["second"]))
    old = await _post(server, _body(CHAT, "one"))
    await old.take(4)
    async with await _post(server, _body(CHAT, "one", "first", "two")) as new:
        await new.read_all()
    assert fake_anthropic.requests[0].closed_at is not None
    assert fake_anthropic.requests[0].closed_at < fake_anthropic.requests[1].opened_at
    assert [c["delta"] for c in _chunks(new) if c != "[DONE]" and c["type"] == "text-delta"] \
        == ["second"]
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "first"},
        {"role": "user", "content": "two"}]
    await old.read_all()
    await old.close()
    assert _chunks(old)[-2:] == [{"type": "abort", "reason": "cancelled"}, "[DONE]"]
    assert server.app[GENERATIONS].active == 0


async def test_a_reply_that_ends_at_once_leaves_its_chat_name_to_expire(
    start_server: StartServer, redis_url: str
) -> None:
    """A reply that ended during its chat's bind (a Redis round trip) was taken for running
    after its end: its name was kept at the running time to live and refreshed for ever.
    Each name of a finished chat must expire with its stream, after the resume window."""
    server = await start_server(redis_url=redis_url, demo_delay_ms=0, demo_tokens=2,
                                resume_window=2.0)

    async def chat(n: int) -> None:
        # The client leaves at once, so no response delivers the end and lets go of the
        # name: the stream's end alone must give it its time to live.
        async with await _post(server, _body(f"brief-{n}")) as stream:
            assert stream.status == 200

    await asyncio.gather(*(chat(n) for n in range(40)))
    for _ in range(500):  # each reply is two tokens
        if server.app[GENERATIONS].active == 0:
            break
        await asyncio.sleep(0.01)
    assert server.app[GENERATIONS].active == 0
    store = server.app[STORE]
    assert isinstance(store, RedisStore)
    assert store._names.owned == {}  # what the owner refreshes
    client = redis.asyncio.from_url(redis_url)
    try:
        names = [key async for key in client.scan_iter(match="*name:{brief-*")]
        ttls = {key: await client.pttl(key) for key in names}
    finally:
        await client.aclose()
    assert len(names) == 40
    assert all(0 < ttl <= 2000 for ttl in ttls.values()), sorted(ttls.values())[-5:]


async def test_a_chat_is_found_from_another_process(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str
) -> None:
    a, b = await asyncio.gather(*(
        processes.sseserver(fake_anthropic, "--redis-url", redis_url) for _ in range(2)))
    fake_anthropic.enqueue(Reply(chunks=[f"w{i} " for i in range(200)], delay=0.02))
    first = await _post(a.url, _body())
    await first.take(5)
    await first.close()
    resumed = await open_sse(f"{b.url}/api/chat/{CHAT}/stream")
    replayed = await resumed.take(5)
    assert [e.data for e in replayed] == [e.data for e in first.events]
    started = asyncio.get_running_loop().time()
    status, _, _ = await request("DELETE", f"{b.url}/api/chat/{CHAT}/stream")
    assert status == 204
    closed = await fake_anthropic.wait_closed(0)
    await resumed.read_all()
    await resumed.close()
    print(f"\nStop on another process to the upstream's close: "
          f"{(closed - started) * 1000:.1f} ms")
    assert closed - started < 0.25
    assert _chunks(resumed)[-2:] == [{"type": "abort", "reason": "cancelled"}, "[DONE]"]
    assert len(fake_anthropic.requests) == 1


async def test_a_chat_reply_cut_by_shutdown_ends_with_an_error_chunk(
    processes: Processes, fake_anthropic: FakeAnthropic
) -> None:
    server = await processes.sseserver(fake_anthropic, "--shutdown-grace", "0")
    fake_anthropic.enqueue(Reply(chunks=[f"t{i} " for i in range(400)], delay=0.025))
    async with await _post(server.url, _body()) as stream:
        await stream.take(4)
        server.signal(signal.SIGTERM)
        await stream.read_all()
    assert await server.wait(timeout=10) == 0
    assert _chunks(stream)[-3:-1] == [{"type": "text-end", "id": "t1"}, {
        "type": "error", "errorText": "The server is shutting down; try again in a moment."}]
    assert _chunks(stream)[-1] == "[DONE]"
    await fake_anthropic.wait_closed(0)


def _ui(role: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"id": role[0] + str(len(parts)), "role": role, "parts": list(parts)}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


async def test_what_claude_reads_of_a_ui_history(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    history = [
        _ui("user", _text("Find "), _text("news"), {"type": "data-note", "data": {"x": 1}}),
        _ui("assistant", {"type": "step-start"},
            {"type": "reasoning", "text": "Let me search."},
            {"type": "tool-web_search", "toolCallId": "srvtoolu_1", "state": "output-available",
             "input": {"query": "news"}, "output": [], "providerExecuted": True},
            _text("Here"), {"type": "source-url", "sourceId": "u", "url": "https://x.test"},
            _text(" it is."), {"type": "dynamic-tool", "toolName": "t", "toolCallId": "c",
                               "state": "input-available", "input": {}}),
        _ui("user", _text("More?")),
        _ui("assistant", {"type": "step-start"}),  # stopped before its first word
        _ui("user", _text("Hello?")),
        _ui("user", _text("Anyone?")),  # the one before was refused (429): sent again
    ]
    body = json.dumps({"id": CHAT, "messages": history, "trigger": "regenerate-message",
                       "messageId": "a2", "max_tokens": 50, "system": "Be brief."}).encode()
    async with await _post(server, body) as stream:
        await stream.read_all()
    assert stream.status == 200
    sent = fake_anthropic.requests[0].body
    assert sent["messages"] == [
        {"role": "user", "content": "Find news"},
        {"role": "assistant", "content": "Here it is."},
        {"role": "user", "content": "More?\n\nHello?\n\nAnyone?"},
    ]
    assert (sent["max_tokens"], sent["system"]) == (50, "Be brief.")


def _history(*messages: object) -> bytes:
    return json.dumps({"id": CHAT, "messages": list(messages),
                       "trigger": "submit-message"}).encode()


BAD_BODIES: Final = [
    pytest.param(b"{", 400, "The body must be JSON in UTF-8.", id="malformed"),
    pytest.param(b"\xff", 400, "The body must be JSON in UTF-8.", id="not-utf8"),
    pytest.param(b"[]", 400, "The body must be a JSON object.", id="not-an-object"),
    pytest.param(b'{"messages":[]}', 400, "id must be the chat's id: 1 to 128 characters of "
                 "A-Z a-z 0-9 - _ . ~ (not . or ..).", id="no-chat-id"),
    pytest.param(_body("a b"), 400, "id must be the chat's id: 1 to 128 characters of "
                 "A-Z a-z 0-9 - _ . ~ (not . or ..).", id="chat-id-with-a-space"),
    pytest.param(_body("x" * 129), 400, "id must be the chat's id: 1 to 128 characters of "
                 "A-Z a-z 0-9 - _ . ~ (not . or ..).", id="chat-id-too-long"),
    pytest.param(_body(CHAT, trigger="resume-stream"), 400,
                 "trigger must be 'submit-message' or 'regenerate-message'.", id="trigger"),
    pytest.param(_body(CHAT, trigger=["submit-message"]), 400,
                 "trigger must be 'submit-message' or 'regenerate-message'.",
                 id="trigger-not-a-string"),
    pytest.param(_body(CHAT, messageId=3), 400, "messageId must be a string.", id="message-id"),
    pytest.param(json.dumps({"id": CHAT, "messages": []}).encode(), 400,
                 "messages must be a non-empty list of UI messages.", id="no-messages"),
    pytest.param(_history("hi"), 400, "messages[0] must be a UI message: an object with id, "
                 "role and parts.", id="message-not-an-object"),
    pytest.param(_history({"role": "user", "parts": []}), 400,
                 "messages[0].id must be a string.", id="message-without-id"),
    pytest.param(_history({"id": "s", "role": "system", "parts": [_text("Be kind.")]}), 400,
                 "messages[0]: system messages are not supported; send the system field in "
                 "the body instead.", id="system-message"),
    pytest.param(_history({"id": "x", "role": "tool", "parts": []}), 400,
                 "messages[0].role must be 'user' or 'assistant'.", id="unknown-role"),
    pytest.param(_history({"id": "x", "role": "user", "parts": "hi"}), 400,
                 "messages[0].parts must be a list.", id="parts-not-a-list"),
    pytest.param(_history(_ui("user", {"text": "hi"})), 400,
                 "messages[0].parts[0] must be an object with a string type.", id="no-type"),
    pytest.param(_history(_ui("user", {"type": "text", "text": 1})), 400,
                 "messages[0].parts[0].text must be a string.", id="text-not-a-string"),
    pytest.param(_history(_ui("user", _text("see"), {"type": "file", "mediaType": "image/png",
                                                   "url": "data:image/png;base64,AA=="})),
                 400, "messages[0].content[0].source.data is not image/png: its first bytes "
                 "are not that type's signature.", id="file-not-what-it-says"),
    pytest.param(_history(_ui("user", _text("see"), {"type": "file", "mediaType": "video/mp4",
                                                   "url": "data:video/mp4;base64,AA=="})),
                 400, "messages[0].parts[1].mediaType must be one of: image/jpeg, image/png, "
                 "image/gif, image/webp, application/pdf, text/plain.", id="file-type"),
    pytest.param(_history(_ui("user", {"type": "file", "mediaType": "application/pdf",
                                       "url": "http://example.com/a.pdf"})),
                 400, "messages[0].parts[0].url must be a data: URL, or an https URL of an "
                 "image or a PDF.", id="file-http-url"),
    pytest.param(_history(_ui("user", _text("yo")), _ui("assistant", {
        "type": "file", "mediaType": "image/png", "url": "https://example.com/a.png"}),
        _ui("user", _text("and?"))), 400,
                 "messages[1].parts[0]: file parts are supported in user messages only.",
                 id="file-from-assistant"),
    pytest.param(_history(_ui("user", {"type": "video", "url": "x"})), 400,
                 "messages[0].parts[0].type 'video' is not a UI message part type.",
                 id="unknown-part-type"),
    pytest.param(_history(_ui("user", {"type": "step-start"})), 400,
                 "messages[0] has no text.", id="user-message-without-text"),
    pytest.param(_history(_ui("assistant", _text("Hi")), _ui("user", _text("yo"))), 400,
                 "The conversation must start with a user message.", id="assistant-first"),
    pytest.param(_history(_ui("user", _text("yo")), _ui("assistant", _text("Hi"))), 400,
                 "The last message must be the user's: the reply answers it.",
                 id="assistant-last"),
    pytest.param(_body(CHAT, "x" * 201), 413, "messages[0] is longer than 200 characters "
                 "(with the messages of its role just before it, if any).", id="too-long"),
    pytest.param(_body(CHAT, "a" * 150, "", "b" * 60), 413, "messages[2] is longer than 200 "
                 "characters (with the messages of its role just before it, if any).",
                 id="too-long-once-joined"),
    pytest.param(_body(CHAT, foo=1), 400, "Unknown field(s): foo.", id="unknown-field"),
    pytest.param(_body(CHAT, model="gpt-4"), 400, "Unknown model 'gpt-4'; allowed: "
                 "claude-sonnet-5-5.", id="unknown-model"),
    pytest.param(_body(CHAT, max_tokens=0), 400, "max_tokens must be an integer from 1 to "
                 "100.", id="max-tokens"),
    pytest.param(b'{"id":"c","messages":[' + b'"x",' * 3000 + b'"x"]}', 413,
                 "The body is larger than 4096 bytes.",  # read as POST /api/streams reads
                 id="body-too-large"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
async def test_bad_bodies_are_refused_and_start_nothing(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    body: bytes, status: int, message: str,
) -> None:
    server = await start_server(fake=fake_anthropic, max_message_chars=200, max_tokens=100,
                                max_body_bytes=4096, models=("claude-sonnet-5-5",))
    got, headers, answer = await request(
        "POST", server.url + "/api/chat", data=body,
        headers={"Content-Type": "application/json"})
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(answer)["error"]
    assert error["message"] == message
    assert error["type"] == ("invalid_request_error" if status == 400 else "request_too_large")
    assert server.app[GENERATIONS].active == 0
    assert fake_anthropic.requests == []


async def test_other_refusals(start_server: StartServer) -> None:
    server = await start_server(access_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = await request("POST", server.url + "/api/chat", data=_body())
    assert status == 401
    assert json.loads(body)["error"]["type"] == "authentication_error"
    assert (await request("GET", f"{server.url}/api/chat/{CHAT}/stream"))[0] == 401
    assert (await request("DELETE", f"{server.url}/api/chat/{CHAT}/stream"))[0] == 401
    status, _, body = await request("POST", server.url + "/api/chat", data=_body(),
                                  headers={**auth, "Content-Type": "text/plain"})
    assert (status, json.loads(body)["error"]["type"]) == (415, "unsupported_media_type")
    for method in ("GET", "DELETE"):
        status, _, body = await request(method, f"{server.url}/api/chat/a%20b/stream",
                                      headers=auth)
        assert status == 400
        assert json.loads(body)["error"]["message"] == (
            "A chat id is 1 to 128 characters of A-Z a-z 0-9 - _ . ~.")
    status, _, body = await request("DELETE", f"{server.url}/api/chat/unknown/stream",
                                  headers=auth)
    assert (status, json.loads(body)["error"]["type"]) == (404, "not_found_error")
    status, _, _ = await request("HEAD", f"{server.url}/api/chat/{CHAT}/stream", headers=auth)
    assert status == 405


# ---- tools in the history (docs/protocol.md, "The AI SDK's chat route", "Tools") ----

TOOL_SCHEMA: Final = {"type": "object", "properties": {"q": {"type": "string"}}}


def _tool_specs() -> tuple[ToolSpec, ...]:
    return tool_specs([
        {"name": "lookup", "input_schema": TOOL_SCHEMA,
         "handler": "tests.support.tool_handlers:lookup"},
        {"name": "guarded", "input_schema": TOOL_SCHEMA, "needs_approval": True,
         "handler": "tests.support.tool_handlers:lookup"},
        {"name": "locate", "input_schema": {"type": "object"}},
    ])


def _tool(name: str, call: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"tool-{name}", "toolCallId": call, "state": state, "input": {"q": call},
            **fields}


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.reset()


async def test_tool_parts_become_tool_use_and_tool_result_blocks(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    """Each step with answered calls is the assistant's blocks and a user turn of their
    results; a signed reasoning part is its thinking block; a call with no outcome, web
    search's parts and an unsigned reasoning part are left out; the last message is an
    assistant one whose client call has its output, and the reply continues it."""
    server = await start_server(fake=fake_anthropic, tools=_tool_specs())
    signed = {"type": "reasoning", "text": "Think.", "state": "done",
              "providerMetadata": {"anthropic": {"signature": "sig"}}}
    history = [
        _ui("user", _text("First")),
        _ui("assistant", {"type": "step-start"}, {"type": "reasoning", "text": "unsigned"},
            _text("Looking. "), _tool("lookup", "toolu_1", "output-available", output="42",
                                      providerExecuted=True),
            _tool("lookup", "toolu_2", "output-error", errorText="The tool failed.",
                  providerExecuted=True),
            {"type": "step-start"}, _text("It is 42"), _text("."),
            {"type": "tool-web_search", "toolCallId": "srvtoolu_1", "state": "output-available",
             "input": {"query": "q"}, "output": [], "providerExecuted": True}),
        _ui("user", _text("Second")),
        _ui("assistant", {"type": "step-start"}, _text("Stopped while it ran"),
            _tool("lookup", "toolu_3", "input-available", providerExecuted=True)),
        _ui("user", _text("Third")),
        {"id": "a-last", "role": "assistant", "parts": [
            {"type": "step-start"}, signed, _text("Asking."),
            {"type": "dynamic-tool", "toolName": "locate", "toolCallId": "toolu_4",
             "state": "output-available", "input": {}, "output": {"locale": "fr-FR"}},
            _tool("guarded", "toolu_5", "output-denied",
                  approval={"id": "toolu_5", "approved": False, "reason": "no"})]},
    ]
    fake_anthropic.enqueue(Reply(chunks=["OK."]))
    async with await _post(server, _history(*history)) as stream:
        await stream.read_all()
    assert stream.status == 200
    assert _chunks(stream)[0] == {"type": "start", "messageId": "a-last"}  # continued
    assert fake_anthropic.requests[0].body["messages"] == [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Looking. "},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "toolu_1"}},
            {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "toolu_2"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "The tool failed.",
             "is_error": True}]},
        {"role": "assistant", "content": "It is 42."},
        {"role": "user", "content": "Second"},
        {"role": "assistant", "content": "Stopped while it ran"},
        {"role": "user", "content": "Third"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Think.", "signature": "sig"},
            {"type": "text", "text": "Asking."},
            {"type": "tool_use", "id": "toolu_4", "name": "locate", "input": {}},
            {"type": "tool_use", "id": "toolu_5", "name": "guarded", "input": {"q": "toolu_5"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_4", "content": '{"locale": "fr-FR"}'},
            {"type": "tool_result", "tool_use_id": "toolu_5", "is_error": True,
             "content": "The user denied this tool call. Reason: no"}]},
    ]
    assert RUNS.inputs == []


async def test_an_approval_in_the_history_is_run_and_its_result_streamed_first(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tool_specs(), **backend)
    fake_anthropic.enqueue(Reply(chunks=["Done."]))
    asked = _tool("guarded", "toolu_5", "approval-responded", providerExecuted=True,
                  approval={"id": "toolu_5", "approved": True})
    body = _history(_ui("user", _text("Do it")),
                    {"id": "a1", "role": "assistant", "parts": [{"type": "step-start"}, asked]})
    async with await _post(server, body) as stream:
        await stream.read_all()
    assert _chunks(stream)[:4] == [
        {"type": "start", "messageId": "a1"}, {"type": "start-step"},
        {"type": "tool-output-available", "toolCallId": "toolu_5",
         "output": "answer to toolu_5: 42", "providerExecuted": True},
        {"type": "text-start", "id": "t2"}]
    assert RUNS.inputs == [{"q": "toolu_5"}]
    assert fake_anthropic.requests[0].body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_5", "name": "guarded", "input": {"q": "toolu_5"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_5", "content": "answer to toolu_5: 42"}]},
    ]


def _last_assistant(*parts: dict[str, Any]) -> bytes:
    return _history(_ui("user", _text("Go")), _ui("assistant", {"type": "step-start"}, *parts))


BAD_TOOL_HISTORIES: Final = [
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", "output-available", output="x")
                                 | {"toolCallId": 7}),
                 "messages[1].parts[1].toolCallId must be a string.", id="call-id"),
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", "output-available", output="x")
                                 | {"input": "q"}),
                 "messages[1].parts[1].input must be an object (the call's input).", id="input"),
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", "finished")),
                 "messages[1].parts[1].state must be a tool part's state.", id="state"),
    # Found by the fuzz test: a state that is not a string was looked up in a set (a 500).
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", {"x": 1})),  # type: ignore[arg-type]
                 "messages[1].parts[1].state must be a tool part's state.", id="state-object"),
    pytest.param(_last_assistant({"type": "dynamic-tool", "toolCallId": "toolu_1",
                                  "state": "output-available", "input": {}, "output": 1}),
                 "messages[1].parts[1].toolName must be a string.", id="dynamic-name"),
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", "output-error")),
                 "messages[1].parts[1].errorText must be a string.", id="error-text"),
    pytest.param(_last_assistant(_tool("guarded", "toolu_1", "approval-responded",
                                       approval={"id": "toolu_1"})),
                 "messages[1].parts[1].approval.approved must be true or false.",
                 id="approval"),
    pytest.param(_last_assistant(_tool("shell", "toolu_1", "output-available", output="x")),
                 "messages[1].content[0] calls 'shell', which this server does not offer.",
                 id="tool-not-offered"),
    pytest.param(_last_assistant(_tool("lookup", "toolu_1", "approval-responded",
                                       approval={"id": "toolu_1", "approved": True})),
                 "messages[2].content[0] approves a call of 'lookup', which needs no approval.",
                 id="approval-not-needed"),
    pytest.param(_last_assistant(_tool("lookup", "bad id", "output-available", output="x")),
                 "messages[1].content[0].id must be a tool call id (letters, digits, _ and -).",
                 id="call-id-chars"),
    pytest.param(_history(_ui("user", _text("Go")), _ui("assistant", _tool(
        "guarded", "toolu_1", "approval-responded", approval={"id": "toolu_1", "approved": True})),
        _ui("user", _text("And?")), _ui("assistant", _text("Well.")), _ui("user", _text("So?"))),
                 "messages[2].content[0]: only the last message may hold tool_approval blocks; "
                 "send the tool_result that was streamed instead.", id="approval-not-last"),
    pytest.param(_last_assistant(_text("Pending"), _tool("locate", "toolu_1", "input-available")),
                 "The last message must be the user's: the reply answers it.",
                 id="unanswered-call-last"),
]


@pytest.mark.parametrize(("body", "message"), BAD_TOOL_HISTORIES)
async def test_bad_tool_parts_are_refused_and_run_nothing(
    start_server: StartServer, fake_anthropic: FakeAnthropic, body: bytes, message: str,
) -> None:
    server = await start_server(fake=fake_anthropic, tools=_tool_specs())
    status, _, answer = await request("POST", server.url + "/api/chat", data=body,
                                      headers={"Content-Type": "application/json"})
    assert (status, json.loads(answer)["error"]["message"]) == (400, message)
    assert server.app[GENERATIONS].active == 0
    assert (fake_anthropic.requests, RUNS.inputs) == ([], [])


# ---- what the replies of Claude's server tools leave in the history ----
# (docs/protocol.md, "The AI SDK's chat route": compaction, container, server tool parts)

COMPACTED: Final = {"type": "compaction", "content": "Earlier: the user asked about SSE.",
                    "encrypted_content": "EoENC", "signature": "SiG"}


def _assistant_with(*parts: dict[str, Any], metadata: Any = None) -> dict[str, Any]:
    message = _ui("assistant", *parts)
    return message | ({"metadata": metadata} if metadata is not None else {})


async def test_a_compaction_goes_back_first_and_server_tool_parts_stay_out(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    """The compaction's block is the first block of its message, exactly as the reply gave
    it; the parts of Claude's own tools (a fetch, a run, an MCP call) are not sent back."""
    server = await start_server(fake=fake_anthropic)
    mcp = {"type": "dynamic-tool", "toolName": "get_issue", "toolCallId": "mcptoolu_1",
           "state": "output-available", "input": {"n": 7}, "providerExecuted": True,
           "output": [{"type": "text", "text": "open"}], "callProviderMetadata": {
               "anthropic": {"type": "mcp-tool-use", "serverName": "tracker"}}}
    history = [
        _ui("user", _text("Go on")),
        _assistant_with(
            {"type": "step-start"},
            {"type": "data-compaction", "id": "c1", "data": {"content": COMPACTED["content"],
                                                             "block": COMPACTED}},
            {"type": "tool-web_fetch", "toolCallId": "srvtoolu_f", "state": "output-available",
             "input": {"url": "https://a.test/"}, "providerExecuted": True, "output": {}},
            {"type": "tool-code_execution", "toolCallId": "srvtoolu_b",
             "state": "output-available", "providerExecuted": True,
             "input": {"type": "bash_code_execution", "command": "ls"}, "output": {}},
            mcp, {"type": "data-file", "id": "f2", "data": {"fileId": "file_1"}},
            _text("Done.")),
        _ui("user", _text("And?")),
    ]
    fake_anthropic.enqueue(Reply(chunks=["OK."]))
    async with await _post(server, _history(*history)) as stream:
        await stream.read_all()
    assert stream.status == 200
    assert fake_anthropic.requests[0].body["messages"] == [
        {"role": "user", "content": "Go on"},
        {"role": "assistant", "content": [COMPACTED, {"type": "text", "text": "Done."}]},
        {"role": "user", "content": "And?"},
    ]


CONTAINER_AT: Final = {"id": "container_011CN", "expiresAt": "2099-01-01T00:00:00Z"}
EXPIRED_AT: Final = {"id": "container_old", "expiresAt": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize(("metadatas", "extra", "sent"), [
    pytest.param([{"container": CONTAINER_AT}, None], {"code_execution": "on"},
                 "container_011CN", id="latest-reply-with-one"),
    pytest.param([{"container": EXPIRED_AT}, {"container": CONTAINER_AT}],
                 {"code_execution": True}, "container_011CN", id="newest-first"),
    pytest.param([{"container": CONTAINER_AT}, {"container": EXPIRED_AT}],
                 {"code_execution": "on"}, "container_011CN", id="expired-skipped"),
    pytest.param([{"container": CONTAINER_AT}, None], {}, None, id="code-execution-off"),
    pytest.param([{"container": CONTAINER_AT}, None],
                 {"code_execution": "on", "container": "container_mine"}, "container_mine",
                 id="the-body-s-own"),
    pytest.param([None, {"other": 1}], {"code_execution": "on"}, None, id="none-named"),
    pytest.param([None, {"container": {"id": "container_x", "expiresAt": "soon"}}],
                 {"code_execution": "on"}, "container_x", id="expiry-unreadable-api-decides"),
    pytest.param([None, {"container": {"id": "container_x", "expiresAt": "2020-01-01T00:00"}}],
                 {"code_execution": "on"}, None, id="expired-without-zone-read-as-utc"),
])
async def test_the_container_comes_back_from_the_reply_s_metadata(
    start_server: StartServer, fake_anthropic: FakeAnthropic, metadatas: list[Any],
    extra: dict[str, Any], sent: str | None,
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True)
    history = [_ui("user", _text("one")),
               _assistant_with(_text("ran"), metadata=metadatas[0]),
               _ui("user", _text("two")),
               _assistant_with(_text("ran again"), metadata=metadatas[1]),
               _ui("user", _text("three"))]
    fake_anthropic.enqueue(Reply(chunks=["OK."]))
    body = json.dumps({"id": CHAT, "messages": history, **extra}).encode()
    async with await _post(server, body) as stream:
        await stream.read_all()
    assert stream.status == 200
    assert fake_anthropic.requests[0].body.get("container") == sent


BAD_SERVER_TOOL_HISTORIES: Final = [
    pytest.param([_assistant_with(_text("x"), metadata={"container": {"id": "bad id"}})],
                 "messages[1].metadata.container.id must be a container id from an earlier "
                 "reply (1 to 128 characters of A-Z a-z 0-9 _ -).", id="container-id"),
    pytest.param([_assistant_with({"type": "data-compaction", "data": {"content": "x"}})],
                 'messages[1].parts[0].data.block must be the compaction block the reply gave '
                 '(an object of type "compaction").', id="compaction-without-block"),
    pytest.param([_assistant_with({"type": "data-compaction", "data": {
        "block": {"type": "text", "text": "x"}}})],
                 'messages[1].parts[0].data.block must be the compaction block the reply gave '
                 '(an object of type "compaction").', id="compaction-not-one"),
    pytest.param([_assistant_with({"type": "data-compaction", "data": {
        "block": COMPACTED | {"content": 5}}})],
                 "messages[1].content[0].content must be a string or null.",
                 id="compaction-content"),
    pytest.param([_assistant_with({"type": "data-compaction", "data": {
        "block": COMPACTED | {"signature": 5}}})],
                 "messages[1].content[0].signature must be a string or null.",
                 id="compaction-signature"),
    pytest.param([_assistant_with({"type": "data-compaction", "data": {
        "block": COMPACTED | {"cache_control": {"type": "ephemeral"}}}})],
                 "messages[1].content[0] (compaction) has unknown 'cache_control'.",
                 id="compaction-extra-field"),
]


@pytest.mark.parametrize(("messages", "message"), BAD_SERVER_TOOL_HISTORIES)
async def test_bad_compaction_and_container_parts_are_refused(
    start_server: StartServer, fake_anthropic: FakeAnthropic, messages: list[Any],
    message: str,
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True)
    body = json.dumps({"id": CHAT, "code_execution": "on", "messages": [
        _ui("user", _text("Go")), *messages, _ui("user", _text("On"))]}).encode()
    status, _, answer = await request("POST", server.url + "/api/chat", data=body,
                                      headers={"Content-Type": "application/json"})
    assert (status, json.loads(answer)["error"]["message"]) == (400, message)
    assert server.app[GENERATIONS].active == 0
    assert fake_anthropic.requests == []



# ---- each new part, byte for byte, and a reconnect in its middle ----

def _frames(*chunks: Any) -> bytes:
    """The exact bytes of these chunks (JSON as the SDK's own servers write it)."""
    return b"".join(
        b"data: [DONE]\n\n" if c == "[DONE]" else
        b"data: " + json.dumps(c, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
        for c in chunks)


def _text_part(part_id: str, *deltas: str) -> list[dict[str, Any]]:
    return [{"type": "text-start", "id": part_id},
            *({"type": "text-delta", "id": part_id, "delta": d} for d in deltas),
            {"type": "text-end", "id": part_id}]


def _done(reason: str = "stop", metadata: Any = None) -> list[Any]:
    finish: dict[str, Any] = {"type": "finish", "finishReason": reason}
    if metadata is not None:
        finish["messageMetadata"] = metadata
    return [{"type": "finish-step"}, finish, "[DONE]"]


def _call(call: str, name: str, tool_input: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool-input-available", "toolCallId": call, "toolName": name,
            "input": tool_input, "providerExecuted": True, **extra}


def _output(call: str, output: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool-output-available", "toolCallId": call, "output": output,
            "providerExecuted": True, **extra}


MCP_META: Final = {"anthropic": {"type": "mcp-tool-use", "serverName": "tracker"}}
VIEWED: Final = {"type": "text_editor_code_execution_view_result", "file_type": "text",
                 "content": "line 1", "num_lines": 1, "start_line": 1, "total_lines": 1}
THE_CONTAINER: Final = {"id": "container_011", "expires_at": "2099-01-01T00:00:00Z"}
FILE_DELAY: Final = 0.3
# Per new kind of block: the reply, then its chunks after `start` and `start-step`; the
# reconnect cuts the first response just after the chunk of the part in the middle.
NEW_PARTS: Final = [
    pytest.param((
        Text(["Fetching."]),
        ServerToolUse("srvtoolu_f", {"url": "https://a.test/p"}, name="web_fetch"),
        WebFetchResult("srvtoolu_f", "https://a.test/p", title="Page A"),
        Text(["Read."]),
    ), None, "end_turn", [
        *_text_part("t1", "Fetching."),
        _call("srvtoolu_f", "web_fetch", {"url": "https://a.test/p"}),
        _output("srvtoolu_f", {"type": "web_fetch_result", "url": "https://a.test/p",
                               "retrievedAt": "2026-12-06T12:00:00Z",
                               "content": {"type": "document", "title": "Page A"}}),
        {"type": "source-url", "sourceId": "https://a.test/p", "url": "https://a.test/p",
         "title": "Page A"},
        *_text_part("t4", "Read."), *_done()], 5, id="web-fetch"),
    pytest.param((
        ServerToolUse("srvtoolu_f", {"url": "https://a.test/p"}, name="web_fetch"),
        WebFetchResult("srvtoolu_f", "https://a.test/p", error_code="url_not_accessible"),
        Text(["It failed."]),
    ), None, "end_turn", [
        _call("srvtoolu_f", "web_fetch", {"url": "https://a.test/p"}),
        {"type": "tool-output-error", "toolCallId": "srvtoolu_f",
         "errorText": "url_not_accessible", "providerExecuted": True},
        *_text_part("t3", "It failed."), *_done()], 2, id="web-fetch-error"),
    pytest.param((
        ServerToolUse("srvtoolu_b", {"command": "ls"}, name="bash_code_execution"),
        BashResult("srvtoolu_b", stdout="a.txt\n", stderr="warn", return_code=2,
                   file_ids=("file_01",)),
    ), THE_CONTAINER, "end_turn", [
        _call("srvtoolu_b", "code_execution", {"type": "bash_code_execution",
                                               "command": "ls"}),
        # The result waits for its file's name (FILE_DELAY): the cut comes before it.
        _output("srvtoolu_b", {"type": "bash_code_execution_result", "stdout": "a.txt\n",
                               "stderr": "warn", "return_code": 2, "content": [
                                   {"type": "bash_code_execution_output", "file_id": "file_01",
                                    "name": "file_01.txt"}]}),
        *_done(metadata={"container": {"id": "container_011",
                                       "expiresAt": "2099-01-01T00:00:00Z"}})], 1,
        id="bash-and-container"),
    pytest.param((
        ServerToolUse("srvtoolu_e", {"command": "view", "path": "/a"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_e", VIEWED),
        ServerToolUse("srvtoolu_c", {"code": "print(1)"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c", stderr="e", encrypted=True),
        Text(["Done."]),
    ), None, "end_turn", [
        _call("srvtoolu_e", "code_execution", {"type": "text_editor_code_execution",
                                               "command": "view", "path": "/a"}),
        _output("srvtoolu_e", VIEWED),
        _call("srvtoolu_c", "code_execution", {"type": "programmatic-tool-call",
                                               "code": "print(1)"}),
        _output("srvtoolu_c", {"type": "encrypted_code_execution_result", "stderr": "e",
                               "return_code": 0, "content": []}),
        *_text_part("t5", "Done."), *_done()], 3, id="text-editor-and-encrypted-run"),
    pytest.param((
        ServerToolUse("srvtoolu_s", {"pattern": "look"}, name="tool_search_tool_regex"),
        ToolSearchResult("srvtoolu_s", ("lookup", "locate")),
        Text(["Found."]),
    ), None, "end_turn", [
        _call("srvtoolu_s", "tool_search_tool_regex", {"pattern": "look"}),
        _output("srvtoolu_s", [{"type": "tool_reference", "toolName": "lookup"},
                               {"type": "tool_reference", "toolName": "locate"}]),
        *_text_part("t3", "Found."), *_done()], 1, id="tool-search"),
    pytest.param((
        McpToolUse("mcptoolu_1", "get_issue", "tracker", {"n": 7}),
        McpToolResult("mcptoolu_1", ["Ticket 7", "is open"]),
        McpToolUse("mcptoolu_2", "get_issue", "tracker", {"n": 8}),
        McpToolResult("mcptoolu_2", "No such issue.", is_error=True),
        Text(["Checked."]),
    ), None, "end_turn", [
        _call("mcptoolu_1", "get_issue", {"n": 7}, providerMetadata=MCP_META, dynamic=True),
        _output("mcptoolu_1", [{"type": "text", "text": "Ticket 7\nis open"}],
                providerMetadata=MCP_META, dynamic=True),
        _call("mcptoolu_2", "get_issue", {"n": 8}, providerMetadata=MCP_META, dynamic=True),
        {"type": "tool-output-error", "toolCallId": "mcptoolu_2",
         "errorText": "No such issue.", "providerExecuted": True,
         "providerMetadata": MCP_META, "dynamic": True},
        *_text_part("t5", "Checked."), *_done()], 1, id="mcp"),
    pytest.param((
        Compaction(["Earlier turns, summarized."]),
        ContainerUpload("file_up"),
        UnknownBlock(),
        Text(["Onward."]),
    ), None, "compaction", [
        {"type": "data-compaction", "id": "c1", "data": {
            "content": "Earlier turns, summarized.", "block": {
                "type": "compaction", "content": "Earlier turns, summarized.",
                "signature": SIGNATURE, "encrypted_content": ENCRYPTED}}},
        {"type": "data-file", "id": "f2", "data": {"fileId": "file_up"}},
        {"type": "data-unsupported", "id": "u3", "data": {
            "kind": "block", "type": "future_block", "data": {"type": "future_block",
                                                             "x": 1}}},
        *_text_part("t4", "Onward."), *_done("other")], 2, id="compaction-file-unknown"),
    pytest.param((Text(["Too ", "long."]),), None, "model_context_window_exceeded", [
        *_text_part("t1", "Too ", "long."), *_done("length")], 2, id="context-full"),
]


@pytest.mark.parametrize(("blocks", "container", "stop_reason", "expected", "cut"),
                         NEW_PARTS)
async def test_each_new_part_byte_for_byte_and_a_reconnect_in_its_middle(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
    blocks: tuple[Any, ...], container: dict[str, Any] | None, stop_reason: str,
    expected: list[Any], cut: int,
) -> None:
    """The first response is cut just after the new part began; the reconnect replays the
    reply from its start, byte for byte what an uninterrupted reply is, no part twice."""
    server = await start_server(
        fake=fake_anthropic, tools=_tool_specs(), tool_search=True, web_fetch=2,
        code_execution=True, compaction=True, resume_window=5.0,
        mcp_servers=mcp_servers([{"name": "tracker", "url": "https://mcp.tracker.test/sse"}]),
        **backend)
    fake_anthropic.file_delay = FILE_DELAY
    fake_anthropic.enqueue(Reply(blocks=blocks, container=container, stop_reason=stop_reason,
                                 delay=0.05))
    body = _body(CHAT, web_fetch="on", code_execution="on", tool_search="on")
    first = await _post(server, body)
    taken = await first.take(2 + cut)
    await first.close()
    async with await open_sse(f"{server.url}/api/chat/{CHAT}/stream") as again:
        await again.read_all()
    message_id = json.loads(taken[0].data)["messageId"]
    whole = _frames({"type": "start", "messageId": message_id}, {"type": "start-step"},
                    *expected)
    assert bytes(again.raw) == whole
    assert whole.startswith(bytes(first.raw))
    assert len(first.raw) < len(whole)  # the cut came before the reply's end
    assert len(fake_anthropic.requests) == 1
