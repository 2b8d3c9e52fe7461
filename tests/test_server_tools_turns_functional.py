"""Server tools across a reply's requests and a conversation's turns, end to end.

Resume (Last-Event-ID) in the middle of each new kind of event gives every event once, on
each stream store; a paused turn is continued with every block sent back exactly as the
API returned it (after a web fetch, a code run, an MCP call), in the container the code
ran in; and the container a reply names is the one the next turn asks for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from sseserver.server_tools_config import McpServer
from sseserver.tools.definitions import tool_specs

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import (
    BashResult,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    FakeAnthropic,
    McpToolListing,
    McpToolResult,
    McpToolUse,
    Reply,
    ServerToolUse,
    Text,
    TextEditorResult,
    Thinking,
    ToolSearchResult,
    ToolUse,
    WebFetchResult,
)
from .support.sse_client import SSEStream, open_sse
from .support.sse_parser import SSEEvent
from .test_fake_blocks import BETA_PARAM
from .test_fake_content import _deep, assert_message_param

PAGE = "https://example.com/sse"
CONTAINER = {"id": "container_011CZfAkE", "expires_at": "2026-12-06T13:00:00Z"}
USER = {"role": "user", "content": "Work it out."}
VIEW = {"type": "text_editor_code_execution_view_result", "content": "print(1)\n",
        "file_type": "text", "num_lines": 1, "start_line": 1, "total_lines": 1}
EVERY_BLOCK = (
    ServerToolUse("srvtoolu_f1", {"url": PAGE}, name="web_fetch"),
    WebFetchResult("srvtoolu_f1", PAGE, title="SSE"),
    Text(["fetched "] * 3),
    ServerToolUse("srvtoolu_c1", {"code": "plot()"}, name="code_execution", pieces=4),
    CodeExecutionResult("srvtoolu_c1", stdout="1\n", file_ids=("file_011plot",)),
    Text(["ran "] * 3),
    ServerToolUse("srvtoolu_t1", {"command": "view", "path": "/tmp/a.py"},
                  name="text_editor_code_execution"),
    TextEditorResult("srvtoolu_t1", VIEW),
    ServerToolUse("srvtoolu_s1", {"pattern": "w"}, name="tool_search_tool_regex"),
    ToolSearchResult("srvtoolu_s1", ("get_weather",)),
    McpToolUse("mcptoolu_1", "echo", "docs", {"text": "hi"}, pieces=4),
    Text(["asked "] * 3),
    McpToolResult("mcptoolu_1", "hi"),
    Compaction(["Summary."]),
    ContainerUpload("file_011upload"),
    Text(["the end"] * 3),
)


def _is(kind: str, **fields: Any) -> Callable[[SSEEvent], bool]:
    def match(event: SSEEvent) -> bool:
        if event.type != kind:
            return False
        data = json.loads(event.data)
        return all(data.get(key) == value for key, value in fields.items())
    return match


CUTS = [
    pytest.param(_is("tool_result", name="web_fetch"), id="web-fetch-result"),
    pytest.param(_is("tool", name="code_execution"), id="code-call"),
    pytest.param(_is("tool_result", name="code_execution"), id="code-result-with-files"),
    pytest.param(_is("tool_result", name="text_editor_code_execution"), id="editor-result"),
    pytest.param(_is("tool_result", name="tool_search_tool_regex"), id="tool-search-result"),
    pytest.param(_is("tool", name="echo"), id="mcp-call"),
    pytest.param(_is("tool_result", name="echo"), id="mcp-result"),
    pytest.param(_is("compaction"), id="compaction"),
    pytest.param(_is("file"), id="file"),
    pytest.param(_is("container"), id="container"),
]


def _signature(stream: SSEStream) -> list[tuple[str, str, str]]:
    return [(e.type, e.data, e.last_event_id) for e in stream.events]


async def _post(server: RunningServer, body: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json=body
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


@pytest.mark.parametrize("cut", CUTS)
async def test_resume_in_the_middle_of_each_kind_gives_each_event_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
    cut: Callable[[SSEEvent], bool],
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5, web_fetch=2,
                                code_execution=True, **backend)
    fake_anthropic.files_created["file_011plot"] = "plot.png"
    fake_anthropic.enqueue(Reply(blocks=EVERY_BLOCK, delay=0.01, container=CONTAINER))
    url = await _post(server, {"messages": [USER], "web_fetch": "on", "code_execution": "on"})
    first = await open_sse(server.url + url)
    while (event := await first.next_event()) is not None and not cut(event):
        pass
    await first.close()
    assert event is not None
    assert cut(event)
    async with await open_sse(server.url + url,
                              headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    async with await open_sse(server.url + url) as whole:
        await whole.read_all()
    assert second.events  # the cut was in the middle
    assert _signature(first) + _signature(second) == _signature(whole)
    assert sorted(whole.types()) == sorted([
        "meta", *["tool"] * 5, *["tool_result"] * 5, *["message"] * 12, "compaction", "file",
        "container", "usage", "done"])
    assert whole.types()[-3:] == ["container", "usage", "done"]
    named = [json.loads(e.data) for e in whole.events if e.type == "tool_result"
             and json.loads(e.data)["name"] == "code_execution"]
    assert named[0]["files"] == [{"file_id": "file_011plot", "name": "plot.png"}]


async def _continued(
    fake: FakeAnthropic, server: RunningServer, body: dict[str, Any], paused: Reply,
) -> SSEStream:
    fake.enqueue(paused, Reply(chunks=["All ", "done."]))
    url = await _post(server, body)
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert fake.request_count == 2
    assert stream.text.endswith("All done.")
    return stream


async def test_a_paused_turn_after_a_web_fetch_sends_back_every_block_exactly(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, web_fetch=3, max_tokens=8192)
    paused = Reply(blocks=(
        Thinking(["Fetch ", "it."]),
        ServerToolUse("srvtoolu_f1", {"url": PAGE}, name="web_fetch"),
        WebFetchResult("srvtoolu_f1", PAGE, title="SSE"),
        ServerToolUse("srvtoolu_f2", {"url": PAGE + "/x"}, name="web_fetch"),
        WebFetchResult("srvtoolu_f2", PAGE + "/x", error_code="url_not_accessible"),
    ), stop_reason="pause_turn")
    stream = await _continued(fake_anthropic, server,
                              {"messages": [USER], "web_fetch": "on", "thinking": 2048,
                               "max_tokens": 8192},
                              paused)
    first, second = (r.body for r in fake_anthropic.requests)
    assert second["messages"] == [USER, {"role": "assistant", "content": paused.content()}]
    assert_message_param(second["messages"][-1])
    fetch_tools = [[t for t in b["tools"] if t["name"] == "web_fetch"] for b in (first, second)]
    assert fetch_tools == [
        [{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 3}],
        [{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 1}],
    ]
    assert json.loads(stream.events[-2].data)["web_fetch_requests"] == 2


async def test_a_paused_turn_after_a_code_run_continues_in_its_container(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True)
    paused = Reply(blocks=(
        ServerToolUse("srvtoolu_c1", {"code": "plot()"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c1", stdout="1\n", file_ids=("file_011plot",)),
        ServerToolUse("srvtoolu_c2", {"code": "s()"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c2", encrypted=True),
        ServerToolUse("srvtoolu_b1", {"command": "ls"}, name="bash_code_execution"),
        BashResult("srvtoolu_b1", stdout="a\n"),
        ServerToolUse("srvtoolu_t1", {"command": "view", "path": "/tmp/a.py"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_t1", VIEW),
        ContainerUpload("file_011upload"),
    ), stop_reason="pause_turn", container=CONTAINER)
    stream = await _continued(fake_anthropic, server,
                              {"messages": [USER], "code_execution": "on"}, paused)
    first, second = (r.body for r in fake_anthropic.requests)
    assert "container" not in first
    assert second["container"] == CONTAINER["id"]
    assert second["messages"] == [USER, {"role": "assistant", "content": paused.content()}]
    assert_message_param(second["messages"][-1])
    # The second request named no container of its own: the reply's is the first one's.
    assert stream.types().count("container") == 1
    assert stream.types()[-3:] == ["container", "usage", "done"]
    assert json.loads(stream.events[-3].data) == CONTAINER


async def test_a_paused_turn_after_an_mcp_call_sends_it_back_with_the_beta(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    docs = McpServer("docs", "https://mcp.example.com/sse")
    server = await start_server(fake=fake_anthropic, mcp_servers=(docs,))
    paused = Reply(blocks=(McpToolListing("docs"),
                           McpToolUse("mcptoolu_1", "echo", "docs", {"text": "hi"}),
                           McpToolResult("mcptoolu_1", ["hi"])), stop_reason="pause_turn")
    await _continued(fake_anthropic, server, {"messages": [USER]}, paused)
    second = fake_anthropic.requests[1]
    turn = {"role": "assistant", "content": paused.content()}
    assert second.body["messages"] == [USER, turn]
    assert _deep(BETA_PARAM.validate_python(turn)) == turn
    assert "mcp-client-2025-11-20" in second.headers["anthropic-beta"].split(",")
    assert second.body["mcp_servers"] == [{"type": "url", "name": "docs",
                                           "url": "https://mcp.example.com/sse"}]


async def test_the_container_a_reply_names_is_the_one_the_next_turn_asks_for(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True)
    fake_anthropic.enqueue(
        Reply(blocks=(ServerToolUse("srvtoolu_c1", {"code": "x = 1"}, name="code_execution"),
                      CodeExecutionResult("srvtoolu_c1"), Text(["Set."])),
              container=CONTAINER),
        Reply(chunks=["Still ", "1."], container=CONTAINER),
    )
    url = await _post(server, {"messages": [USER], "code_execution": "on"})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    container = json.loads(next(e.data for e in stream.events if e.type == "container"))
    assert container == CONTAINER
    turns = [USER, {"role": "assistant", "content": stream.text},
             {"role": "user", "content": "And x?"}]
    url = await _post(server, {"messages": turns, "code_execution": "on",
                               "container": container["id"]})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert stream.text == "Still 1."
    first, second = (r.body for r in fake_anthropic.requests)
    assert "container" not in first
    assert second["container"] == CONTAINER["id"]
    assert second["messages"] == turns


async def test_the_tool_loop_runs_its_next_step_in_the_container_and_says_it_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """A reply that calls an operator's tool the server runs, then goes on: the next step
    asks for the container the code ran in, and the reader hears of it once."""
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    tools = tool_specs([{"name": "lookup", "description": "look things up",
                         "input_schema": schema,
                         "handler": "tests.support.tool_handlers:lookup"}])
    server = await start_server(fake=fake_anthropic, code_execution=True, tools=tools)
    fake_anthropic.enqueue(
        Reply(blocks=(ServerToolUse("srvtoolu_c1", {"code": "x = 1"}, name="code_execution"),
                      CodeExecutionResult("srvtoolu_c1"),
                      ToolUse("toolu_01", "lookup", {"q": "x"})),
              stop_reason="tool_use", container=CONTAINER),
        Reply(chunks=["Done."], container=CONTAINER),
    )
    url = await _post(server, {"messages": [USER], "code_execution": "on"})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert stream.text == "Done."
    assert stream.types().count("container") == 1
    assert stream.types()[-3:] == ["container", "usage", "done"]
    first, second = (r.body for r in fake_anthropic.requests)
    assert "container" not in first
    assert second["container"] == CONTAINER["id"]
    # The step's turn went back exactly as the API returned it, code run included.
    assert second["messages"][1]["content"][:2] == [
        ServerToolUse("srvtoolu_c1", {"code": "x = 1"}, name="code_execution").content(),
        CodeExecutionResult("srvtoolu_c1").content(),
    ]


async def test_a_compaction_s_block_goes_back_next_turn_exactly(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, compaction=True)
    fake_anthropic.enqueue(Reply(blocks=(Compaction(["Earlier: ", "x = 1."]), Text(["Ok."]))),
                           Reply(chunks=["Yes."]))
    url = await _post(server, {"messages": [USER]})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    compaction = json.loads(next(e.data for e in stream.events if e.type == "compaction"))
    assistant = {"role": "assistant",
                 "content": [compaction["block"], {"type": "text", "text": stream.text}]}
    turns = [USER, assistant, {"role": "user", "content": "And then?"}]
    url = await _post(server, {"messages": turns})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert stream.text == "Yes."
    sent = fake_anthropic.requests[1].body["messages"]
    assert sent == turns
    assert sent[1]["content"][0] == Compaction(["Earlier: ", "x = 1."]).content()
    assert _deep(BETA_PARAM.validate_python(sent[1])) == sent[1]


async def test_a_turn_with_every_server_tool_block_is_accepted_back_exactly(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """What a `turn` event carries when Claude ran server tools before calling the
    client's tool goes back as the API returned it."""
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["Fine."]))
    blocks = [b.content() for b in EVERY_BLOCK if not isinstance(b, Text)]
    turns = [USER, {"role": "assistant", "content": blocks},
             {"role": "user", "content": "Go on."}]
    url = await _post(server, {"messages": turns})
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert stream.text == "Fine."
    assert fake_anthropic.requests[0].body["messages"] == turns


@pytest.mark.parametrize(("block", "message"), [
    ({"type": "compaction", "content": ""},
     "messages[1].content[0].content must not be empty (null: a failed compaction)."),
    ({"type": "compaction", "content": 5},
     "messages[1].content[0].content must be a string or null."),
    ({"type": "compaction", "content": "s", "summary": "x"},
     "messages[1].content[0] (compaction) has unknown 'summary'."),
    ({"type": "container_upload", "file_id": "../x"},
     "messages[1].content[0].file_id must be a file id (letters, digits, _ and -)."),
    ({"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "echo", "input": {}},
     "messages[1].content[0] (mcp_tool_use) lacks server_name."),
    ({"type": "mcp_tool_result", "tool_use_id": "mcptoolu_1", "content": 5},
     "messages[1].content[0].content must be a string or a list of text blocks."),
    ({"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_1", "content": "x"},
     "messages[1].content[0].content must be a list or an object."),
    ({"type": "mcp_tool_listing", "mcp_server_name": "docs", "tools": {}},
     "messages[1].content[0].tools must be a list."),
], ids=["empty-summary", "summary-not-a-string", "unknown-field", "odd-file-id",
        "mcp-call-without-server", "mcp-result-content", "run-result-content",
        "listing-tools"])
async def test_a_server_tool_block_sent_back_out_of_shape_is_a_400(
    start_server: StartServer, fake_anthropic: FakeAnthropic, block: dict[str, Any],
    message: str,
) -> None:
    server = await start_server(fake=fake_anthropic)
    turns = [USER, {"role": "assistant", "content": [block]},
             {"role": "user", "content": "Go on."}]
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": turns}
    ) as response:
        assert response.status == 400
        assert await response.json() == {
            "error": {"type": "invalid_request_error", "message": message}}
    assert fake_anthropic.request_count == 0
