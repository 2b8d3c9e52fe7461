"""Every block Claude can send, on the wire, end to end: the real app, the fake upstream.

Each server tool's call and result, MCP calls, compaction, container uploads and the
container, as the exact frames of docs/protocol.md ("Events", "Server tools"); nothing
encrypted or bulky on the wire; a code run's files named through the Files API without
holding back the text that follows; and the stop reasons the newer features bring.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from sseserver.providers import file_names

from .conftest import StartServer
from .support.fake_anthropic import (
    BashResult,
    Block,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    FakeAnthropic,
    HttpError,
    McpToolListing,
    McpToolResult,
    McpToolUse,
    Reply,
    ServerToolUse,
    Text,
    TextEditorResult,
    ToolSearchResult,
    UnknownBlock,
    WebFetchResult,
)
from .support.fake_blocks import ENCRYPTED, SIGNATURE
from .support.metrics_text import value
from .support.sse_client import open_sse
from .test_claude_events_functional import frames, meta, usage
from .test_metrics_functional import scrape

PAGE = "https://example.com/sse"
CONTAINER = {"id": "container_011CZfAkE", "expires_at": "2026-12-06T13:00:00Z"}
LONG_VIEW = "é" * 9000  # 18,000 bytes of UTF-8: cut at 16 KiB, between characters
CODE = "code_execution"
BASH = "bash_code_execution"
EDITOR = "text_editor_code_execution"


def _editor(tool_id: str, command: str, path: str) -> ServerToolUse:
    return ServerToolUse(tool_id, {"command": command, "path": path}, name=EDITOR)


def _call(tool_id: str, name: str, **tool_input: Any) -> tuple[str, dict[str, Any]]:
    return "tool", {"id": tool_id, "name": name, "input": tool_input}


def _result(tool_id: str, name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "tool_result", {"tool_use_id": tool_id, "name": name, **fields}


# Per block kind: the reply's blocks, and the events a reader gets between meta and usage.
# A result that lists files comes last: it waits for their names, and anything after it
# may pass it (test_text_after_a_run_does_not_wait_for_its_file_names).
SCENARIOS = [
    pytest.param(
        (ServerToolUse("srvtoolu_f1", {"url": PAGE}, name="web_fetch"),
         WebFetchResult("srvtoolu_f1", PAGE, title="SSE ✓"),
         ServerToolUse("srvtoolu_f2", {"url": PAGE + "/gone"}, name="web_fetch"),
         WebFetchResult("srvtoolu_f2", PAGE + "/gone", error_code="url_not_accessible"),
         Text(["Fetched."])),
        [_call("srvtoolu_f1", "web_fetch", url=PAGE),
         _result("srvtoolu_f1", "web_fetch", url=PAGE, title="SSE ✓",
                 retrieved_at="2026-12-06T12:00:00Z"),
         _call("srvtoolu_f2", "web_fetch", url=PAGE + "/gone"),
         _result("srvtoolu_f2", "web_fetch", error={"code": "url_not_accessible"}),
         ("message", "Fetched.")],
        id="web-fetch",
    ),
    pytest.param(
        (ServerToolUse("srvtoolu_c2", {"code": "search()"}, name=CODE),
         CodeExecutionResult("srvtoolu_c2", stderr="warn", return_code=1, encrypted=True),
         ServerToolUse("srvtoolu_c3", {"code": "loop()"}, name=CODE),
         CodeExecutionResult("srvtoolu_c3", error_code="execution_time_exceeded"),
         ServerToolUse("srvtoolu_c1", {"code": "plot()"}, name=CODE),
         CodeExecutionResult("srvtoolu_c1", stdout="1\n", file_ids=("file_011plot",))),
        [_call("srvtoolu_c2", CODE, code="search()"),
         _result("srvtoolu_c2", CODE, stdout=None, stderr="warn", return_code=1, files=[]),
         _call("srvtoolu_c3", CODE, code="loop()"),
         _result("srvtoolu_c3", CODE, error={"code": "execution_time_exceeded"}),
         _call("srvtoolu_c1", CODE, code="plot()"),
         _result("srvtoolu_c1", CODE, stdout="1\n", stderr="", return_code=0,
                 files=[{"file_id": "file_011plot", "name": "plot.png"}]),
         ("container", CONTAINER)],
        id="code-execution",
    ),
    pytest.param(
        (ServerToolUse("srvtoolu_b2", {"command": "big"}, name=BASH),
         BashResult("srvtoolu_b2", error_code="output_file_too_large"),
         ServerToolUse("srvtoolu_b1", {"command": "ls -l"}, name=BASH),
         BashResult("srvtoolu_b1", stdout="total 0\n", file_ids=("file_011a", "file_011b"))),
        [_call("srvtoolu_b2", BASH, command="big"),
         _result("srvtoolu_b2", BASH, command="big", error={"code": "output_file_too_large"}),
         _call("srvtoolu_b1", BASH, command="ls -l"),
         _result("srvtoolu_b1", BASH, command="ls -l", stdout="total 0\n", stderr="",
                 return_code=0, files=[{"file_id": "file_011a", "name": "file_011a.txt"},
                                       {"file_id": "file_011b", "name": "file_011b.txt"}]),
         ("container", CONTAINER)],
        id="bash",
    ),
    pytest.param(
        (_editor("srvtoolu_t1", "view", "/tmp/a.py"),
         TextEditorResult("srvtoolu_t1", {
             "type": "text_editor_code_execution_view_result", "content": "print(1)\n",
             "file_type": "text", "num_lines": 1, "start_line": 1, "total_lines": 1}),
         _editor("srvtoolu_t2", "create", "/tmp/b.py"),
         TextEditorResult("srvtoolu_t2", {"type": "text_editor_code_execution_create_result",
                                          "is_file_update": False}),
         _editor("srvtoolu_t3", "str_replace", "/tmp/b.py"),
         TextEditorResult("srvtoolu_t3", {
             "type": "text_editor_code_execution_str_replace_result", "lines": ["-a", "+b"],
             "new_lines": 1, "new_start": 3, "old_lines": 1, "old_start": 3}),
         _editor("srvtoolu_t4", "view", "/nope"),
         TextEditorResult("srvtoolu_t4", error_code="file_not_found", error_message="No file."),
         _editor("srvtoolu_t5", "view", "/tmp/long.txt"),
         TextEditorResult("srvtoolu_t5", {
             "type": "text_editor_code_execution_view_result", "content": LONG_VIEW,
             "file_type": "text"})),
        [_call("srvtoolu_t1", EDITOR, command="view", path="/tmp/a.py"),
         _result("srvtoolu_t1", EDITOR, command="view", path="/tmp/a.py", result={
             "type": "view", "content": "print(1)\n", "file_type": "text", "num_lines": 1,
             "start_line": 1, "total_lines": 1}),
         _call("srvtoolu_t2", EDITOR, command="create", path="/tmp/b.py"),
         _result("srvtoolu_t2", EDITOR, command="create", path="/tmp/b.py",
                 result={"type": "create", "is_file_update": False}),
         _call("srvtoolu_t3", EDITOR, command="str_replace", path="/tmp/b.py"),
         _result("srvtoolu_t3", EDITOR, command="str_replace", path="/tmp/b.py", result={
             "type": "str_replace", "lines": ["-a", "+b"], "new_lines": 1, "new_start": 3,
             "old_lines": 1, "old_start": 3}),
         _call("srvtoolu_t4", EDITOR, command="view", path="/nope"),
         _result("srvtoolu_t4", EDITOR, command="view", path="/nope",
                 error={"code": "file_not_found", "message": "No file."}),
         _call("srvtoolu_t5", EDITOR, command="view", path="/tmp/long.txt"),
         _result("srvtoolu_t5", EDITOR, command="view", path="/tmp/long.txt", result={
             "type": "view", "content": "é" * 8192, "file_type": "text", "truncated": True}),
         ("container", CONTAINER)],
        id="text-editor",
    ),
    pytest.param(
        (ServerToolUse("srvtoolu_s1", {"pattern": "weather"}, name="tool_search_tool_regex"),
         ToolSearchResult("srvtoolu_s1", ("get_weather", "get_forecast")),
         ServerToolUse("srvtoolu_s2", {"query": "x"}, name="tool_search_tool_bm25"),
         ToolSearchResult("srvtoolu_s2", error_code="unavailable"), Text(["Found."])),
        [_call("srvtoolu_s1", "tool_search_tool_regex", pattern="weather"),
         _result("srvtoolu_s1", "tool_search_tool_regex", tools=["get_weather", "get_forecast"]),
         _call("srvtoolu_s2", "tool_search_tool_bm25", query="x"),
         _result("srvtoolu_s2", "tool_search_tool_bm25", error={"code": "unavailable"}),
         ("message", "Found.")],
        id="tool-search",
    ),
    pytest.param(
        (McpToolListing("docs", ("echo", "fail")),
         McpToolUse("mcptoolu_1", "echo", "docs", {"text": "hi ✓"}),
         McpToolResult("mcptoolu_1", ["hi ✓", "again"]),
         McpToolUse("mcptoolu_2", "fail", "docs", {}),
         McpToolResult("mcptoolu_2", "It broke.", is_error=True),
         McpToolUse("mcptoolu_3", "dump", "logs", {"all": True}),
         McpToolResult("mcptoolu_3", "a" * 20_000), Text(["Done."])),
        [("tool", {"id": "mcptoolu_1", "name": "echo", "input": {"text": "hi ✓"},
                   "server_name": "docs"}),
         _result("mcptoolu_1", "echo", server_name="docs", is_error=False,
                 content="hi ✓\nagain"),
         ("tool", {"id": "mcptoolu_2", "name": "fail", "input": {}, "server_name": "docs"}),
         _result("mcptoolu_2", "fail", server_name="docs", is_error=True, content="It broke."),
         ("tool", {"id": "mcptoolu_3", "name": "dump", "input": {"all": True},
                   "server_name": "logs"}),
         _result("mcptoolu_3", "dump", server_name="logs", is_error=False,
                 content="a" * 16384, truncated=True),
         ("message", "Done.")],
        id="mcp",
    ),
    pytest.param(
        (Compaction(["Earlier, ", "we talked."]), Text(["Go on."])),
        [("compaction", {"content": "Earlier, we talked.", "block": {
            "type": "compaction", "content": "Earlier, we talked.", "signature": SIGNATURE,
            "encrypted_content": ENCRYPTED}}),
         ("message", "Go on.")],
        id="compaction",
    ),
    pytest.param(
        (Compaction(None), Text(["Go on."])),
        [("compaction", {"content": None, "block": {
            "type": "compaction", "content": None, "signature": SIGNATURE,
            "encrypted_content": ENCRYPTED}}),
         ("message", "Go on.")],
        id="failed-compaction",
    ),
    pytest.param(
        (ContainerUpload("file_011upload"), Text(["Read it."])),
        [("file", {"file_id": "file_011upload"}), ("message", "Read it.")],
        id="container-upload",
    ),
]


def _reply(blocks: tuple[Block, ...], events: list[tuple[str, Any]]) -> Reply:
    container = CONTAINER if ("container", CONTAINER) in events else None
    return Reply(blocks=blocks, container=container)


@pytest.mark.parametrize("query", [
    "/api/sse?message=hi&web_fetch=on&code_execution=on",
    "/api/sse?message=hi",  # nothing kept: the events are the same
], ids=["tools-on", "tools-off"])
@pytest.mark.parametrize(("blocks", "events"), SCENARIOS)
async def test_each_block_s_exact_frames(
    start_server: StartServer, fake_anthropic: FakeAnthropic, blocks: tuple[Block, ...],
    events: list[tuple[str, Any]], query: str,
) -> None:
    server = await start_server(fake=fake_anthropic, web_fetch=3, code_execution=True)
    fake_anthropic.files_created["file_011plot"] = "plot.png"
    reply = _reply(blocks, events)
    fake_anthropic.enqueue(reply)
    async with await open_sse(server.url + query) as stream:
        await stream.read_all()
    stream_id = json.loads(stream.events[0].data)["stream"]
    expected = [meta(stream_id), *events, ("usage", usage(reply)), ("done", "[DONE]")]
    assert bytes(stream.raw) == frames(stream_id, expected)
    # What only the API can read, and a fetched page, stay off the wire (but a
    # compaction's block, which the client sends back as it is).
    if "compaction" not in stream.types():
        assert ENCRYPTED.encode() not in stream.raw
        assert SIGNATURE.encode() not in stream.raw
    assert b"The fetched page" not in stream.raw
    # Known blocks are not "unknown".
    samples = await scrape(server)
    assert not [s for s in samples if s[0] == "sseserver_unknown_blocks_total"]


async def test_web_fetches_are_counted_in_usage(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, web_fetch=3, web_search=2)
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_f1", {"url": PAGE}, name="web_fetch"),
        WebFetchResult("srvtoolu_f1", PAGE),
        ServerToolUse("srvtoolu_w1", {"query": "sse"}),
        ServerToolUse("srvtoolu_f2", {"url": PAGE}, name="web_fetch"),
        WebFetchResult("srvtoolu_f2", PAGE), Text(["ok"]))))
    async with await open_sse(f"{server.url}/api/sse?message=hi&web_fetch=on") as stream:
        await stream.read_all()
    reported = json.loads(stream.events[-2].data)
    assert (reported["web_fetch_requests"], reported["web_search_requests"]) == (2, 1)


@pytest.mark.parametrize("stop_reason", ["compaction", "model_context_window_exceeded"])
async def test_the_newer_stop_reasons_pass_through(
    start_server: StartServer, fake_anthropic: FakeAnthropic, stop_reason: str
) -> None:
    server = await start_server(fake=fake_anthropic, compaction=True)
    fake_anthropic.enqueue(Reply(blocks=(Compaction(["Summary."]),), stop_reason=stop_reason))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.types() == ["meta", "compaction", "usage", "done"]
    assert json.loads(stream.events[-2].data)["stop_reason"] == stop_reason
    assert fake_anthropic.requests[0].body["context_management"] == {
        "edits": [{"type": "compact_20260112"}]}


async def test_text_after_a_run_does_not_wait_for_its_file_names(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """The result that lists files waits for their names; the text after it does not."""
    server = await start_server(fake=fake_anthropic, code_execution=True)
    fake_anthropic.file_delay = 0.6
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_c1", {"code": "plot()"}, name=CODE),
        CodeExecutionResult("srvtoolu_c1", file_ids=("file_011x", "file_011y")),
        Text(["Here ", "it is."]))))
    started = time.monotonic()
    arrivals: dict[str, float] = {}
    async with await open_sse(f"{server.url}/api/sse?message=hi&code_execution=on") as stream:
        while (event := await stream.next_event()) is not None:
            arrivals.setdefault(event.type, time.monotonic() - started)
    assert stream.types() == ["meta", "tool", "message", "message", "tool_result", "usage",
                              "done"]
    assert arrivals["message"] < 0.4 < arrivals["tool_result"]
    result = json.loads(stream.events[4].data)
    assert result["files"] == [{"file_id": "file_011x", "name": "file_011x.txt"},
                               {"file_id": "file_011y", "name": "file_011y.txt"}]
    # Both looked up at once, with the operator's key and the Files API's beta.
    assert arrivals["tool_result"] < 1.1
    assert len(fake_anthropic.file_requests) == 2
    for headers in fake_anthropic.file_requests:
        assert headers["anthropic-beta"] == "files-api-2025-04-14"
        assert headers["x-api-key"] == fake_anthropic.api_key


@pytest.mark.parametrize("failure", ["error", "not-found", "slow", "odd-id"])
async def test_a_name_that_cannot_be_had_is_null(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch, failure: str,
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True)
    file_id = "file_011x"
    if failure == "error":
        fake_anthropic.file_error = HttpError(500, "api_error")
    elif failure == "not-found":
        fake_anthropic.file_error = HttpError(404, "not_found_error")
    elif failure == "slow":
        monkeypatch.setattr(file_names, "LOOKUP_TIMEOUT", 0.3)
        fake_anthropic.file_delay = 3.0
    else:  # an id that would name another resource: never put in a URL
        file_id = "../messages"
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_c1", {"code": "x()"}, name=CODE),
        CodeExecutionResult("srvtoolu_c1", file_ids=(file_id,)), Text(["Done."]))))
    started = time.monotonic()
    async with await open_sse(f"{server.url}/api/sse?message=hi&code_execution=on") as stream:
        await stream.read_all()
    elapsed = time.monotonic() - started
    result = json.loads(next(e.data for e in stream.events if e.type == "tool_result"))
    assert result["files"] == [{"file_id": file_id, "name": None}]
    assert stream.types()[-2:] == ["usage", "done"]
    assert elapsed < 2.0
    assert len(fake_anthropic.file_requests) == (0 if failure == "odd-id" else 1)
    assert fake_anthropic.request_count == 1


async def test_blocks_the_sdk_knows_but_this_server_does_not_are_generic_blocks(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture,
) -> None:
    """A block of a feature this server does not use (here a model fallback's marker)
    and a delta this server does not know on a block it knows arrive as `block` events,
    counted, said once per type; the reply completes."""
    server = await start_server(fake=fake_anthropic)
    fallback = {"type": "fallback", "from": {"model": "claude-sonnet-5-5"},
                "to": {"model": "claude-opus-5"}, "trigger": {"type": "refusal"}}
    reply = Reply(blocks=(UnknownBlock(fallback), Text(["a", "b"], unknown_delta_after=1),
                          Text(["c"])))
    with caplog.at_level(logging.WARNING, logger="sseserver.generations"):
        for _ in range(2):
            fake_anthropic.enqueue(reply)
            async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
                await stream.read_all()
    assert stream.types() == ["meta", "block", "message", "block", "message", "message",
                              "usage", "done"]
    assert json.loads(stream.events[1].data) == {"kind": "block", "type": "fallback",
                                                 "data": fallback}
    assert stream.text == "abc"
    samples = await scrape(server)
    assert value(samples, "sseserver_unknown_blocks_total", type="fallback") == 2
    assert value(samples, "sseserver_unknown_blocks_total", type="future_delta") == 2
    warnings = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert len(warnings) == 2


async def test_a_cancel_while_names_are_looked_up_ends_the_reply_at_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """Stop while a result waits for its files' names and text streams on: the upstream
    request closes at once, the lookups are let go, the reply ends as cancelled."""
    server = await start_server(fake=fake_anthropic, code_execution=True)
    fake_anthropic.file_delay = 5.0
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_c1", {"code": "plot()"}, name=CODE),
        CodeExecutionResult("srvtoolu_c1", file_ids=("file_011x",)),
        Text(["word "] * 200)), delay=0.02))
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/streams", json={
            "messages": [{"role": "user", "content": "hi"}], "code_execution": "on",
        }) as response:
            url = (await response.json())["url"]
        async with await open_sse(server.url + url) as stream:
            while (await stream.next_event()) is not None and stream.types().count(
                    "message") < 3:
                pass
            asked_at = time.monotonic()
            async with session.delete(server.url + url) as deleted:
                assert deleted.status == 204
            closed_at = await fake_anthropic.wait_closed(0, timeout=2)
            await stream.read_all()
    assert (closed_at - asked_at) < 0.1
    assert "tool_result" not in stream.types()
    assert stream.types()[-2:] == ["usage", "done"]
    assert json.loads(stream.events[-2].data)["stop_reason"] == "cancelled"
    assert fake_anthropic.requests[0].deltas_sent < 200


async def test_a_container_not_shaped_like_one_makes_no_event(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["ok"], container={"id": 5, "expires_at": "x"}))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.types() == ["meta", "message", "usage", "done"]
