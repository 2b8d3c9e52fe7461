"""The fake's server tool blocks, MCP, compaction, containers and files, against the SDK.

Why: the relay's tests of every block Claude can send trust the fake to send them as the
API does. Each scenario's stream is validated event by event against the installed SDK's
types (the beta types for MCP and compaction, which only they know), rebuilt by the SDK's
own stream accumulator (`messages.stream` / `beta.messages.stream`), and its blocks, sent
back as an assistant turn, are a message the SDK accepts; the Files API's metadata is read
by the SDK's own files client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic.types import RawMessageStreamEvent
from anthropic.types.beta import BetaMessageParam, BetaRawMessageStreamEvent

from tests.support.fake_anthropic import (
    BashResult,
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
    UnknownEvent,
    WebFetchResult,
    running_fake_anthropic,
)
from tests.support.fake_blocks import BETA_BLOCKS, Block

from .test_fake_content import _assert_declared, _deep, _no_nulls, _raw_events, assert_message_param

MODEL = "claude-sonnet-5-5"
PROMPT: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Run it."}]
BETA_PROMPT: list[BetaMessageParam] = [{"role": "user", "content": "Run it."}]
EVENTS: pydantic.TypeAdapter[RawMessageStreamEvent] = pydantic.TypeAdapter(RawMessageStreamEvent)
BETA_EVENTS: pydantic.TypeAdapter[BetaRawMessageStreamEvent] = pydantic.TypeAdapter(
    BetaRawMessageStreamEvent
)
BETA_PARAM: pydantic.TypeAdapter[BetaMessageParam] = pydantic.TypeAdapter(BetaMessageParam)
PAGE = "https://example.com/sse"
CONTAINER = {"id": "container_011CZfAkE", "expires_at": "2026-12-06T13:00:00Z"}
VIEW = {"type": "text_editor_code_execution_view_result", "content": "print(1)\n",
        "file_type": "text", "num_lines": 1, "start_line": 1, "total_lines": 1}
CREATE = {"type": "text_editor_code_execution_create_result", "is_file_update": False}
REPLACE = {"type": "text_editor_code_execution_str_replace_result", "lines": ["-a", "+b"],
           "new_lines": 1, "new_start": 3, "old_lines": 1, "old_start": 3}

SCENARIOS: dict[str, tuple[Block, ...]] = {
    "web-fetch": (
        ServerToolUse("srvtoolu_f1", {"url": PAGE}, name="web_fetch"),
        WebFetchResult("srvtoolu_f1", PAGE, title="SSE ✓"),
        ServerToolUse("srvtoolu_f2", {"url": PAGE + "/gone"}, name="web_fetch"),
        WebFetchResult("srvtoolu_f2", PAGE + "/gone", error_code="url_not_accessible"),
        Text(["Fetched."]),
    ),
    "code-execution": (
        ServerToolUse("srvtoolu_c1", {"code": "print(1)"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c1", stdout="1\n", file_ids=("file_011plot",)),
        ServerToolUse("srvtoolu_c2", {"code": "search()"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c2", stderr="warn", return_code=1, encrypted=True),
        ServerToolUse("srvtoolu_c3", {"code": "loop()"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c3", error_code="execution_time_exceeded"),
    ),
    "bash": (
        ServerToolUse("srvtoolu_b1", {"command": "ls -l"}, name="bash_code_execution"),
        BashResult("srvtoolu_b1", stdout="total 0\n", file_ids=("file_011a", "file_011b")),
        ServerToolUse("srvtoolu_b2", {"command": "big"}, name="bash_code_execution"),
        BashResult("srvtoolu_b2", error_code="output_file_too_large"),
    ),
    "text-editor": (
        ServerToolUse("srvtoolu_t1", {"command": "view", "path": "/tmp/a.py"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_t1", VIEW),
        ServerToolUse("srvtoolu_t2", {"command": "create", "path": "/tmp/b.py",
                                      "file_text": "x"}, name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_t2", CREATE),
        ServerToolUse("srvtoolu_t3", {"command": "str_replace", "path": "/tmp/b.py",
                                      "old_str": "a", "new_str": "b"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_t3", REPLACE),
        ServerToolUse("srvtoolu_t4", {"command": "view", "path": "/nope"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_t4", error_code="file_not_found", error_message="No file."),
    ),
    "tool-search": (
        ServerToolUse("srvtoolu_s1", {"pattern": "weather"}, name="tool_search_tool_regex"),
        ToolSearchResult("srvtoolu_s1", ("get_weather", "get_forecast")),
        ServerToolUse("srvtoolu_s2", {"query": "x"}, name="tool_search_tool_bm25"),
        ToolSearchResult("srvtoolu_s2", error_code="unavailable"),
    ),
    "container-upload": (ContainerUpload("file_011upload"), Text(["Read it."])),
    "mcp": (
        McpToolListing("docs", ("echo", "fail")),
        McpToolUse("mcptoolu_1", "echo", "docs", {"text": "hi ✓"}),
        McpToolResult("mcptoolu_1", ["hi ✓", "again"]),
        McpToolUse("mcptoolu_2", "fail", "docs", {}),
        McpToolResult("mcptoolu_2", "It broke.", is_error=True),
        Text(["Done."]),
    ),
    "compaction": (Compaction(["Earlier, ", "we talked."]), Text(["Go on."])),
    "failed-compaction": (Compaction(None), Text(["Go on."])),
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with running_fake_anthropic() as server:
        yield server


def _beta(blocks: Sequence[Block]) -> bool:
    return any(isinstance(b, BETA_BLOCKS) for b in blocks)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_each_scenario_validates_event_by_event(fake: FakeAnthropic, name: str) -> None:
    blocks = SCENARIOS[name]
    fake.enqueue(Reply(blocks=blocks, container=CONTAINER))
    events = await _raw_events(fake, {"model": MODEL, "max_tokens": 2048, "messages": PROMPT,
                                      "stream": True})
    adapter: pydantic.TypeAdapter[Any] = BETA_EVENTS if _beta(blocks) else EVENTS
    for raw in events:
        if raw["type"] != "ping":
            _assert_declared(adapter.validate_python(raw))
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == [b.content()["type"] for b in blocks]
    assert events[-2]["delta"]["container"] == CONTAINER


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_sdk_accumulator_rebuilds_each_scenario(
    fake: FakeAnthropic, name: str
) -> None:
    blocks = SCENARIOS[name]
    reply = Reply(blocks=blocks, container=CONTAINER, stop_reason="pause_turn")
    fake.enqueue(reply, reply)
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        message: Any
        whole: Any
        if _beta(blocks):
            async with sdk.beta.messages.stream(model=MODEL, max_tokens=2048,
                                                messages=BETA_PROMPT) as beta_stream:
                message = await beta_stream.get_final_message()
            whole = await sdk.beta.messages.create(model=MODEL, max_tokens=2048,
                                                   messages=BETA_PROMPT)
        else:
            async with sdk.messages.stream(model=MODEL, max_tokens=2048,
                                           messages=PROMPT) as stream:
                message = await stream.get_final_message()
            whole = await sdk.messages.create(model=MODEL, max_tokens=2048, messages=PROMPT)
    for built in (message, whole):
        _assert_declared(built)
        assert [b.model_dump(exclude_none=True) for b in built.content] == _no_nulls(
            reply.content()
        )
        assert built.stop_reason == "pause_turn"
        assert built.container is not None
        assert built.container.id == CONTAINER["id"]
    # What a client sends back to continue the paused turn is what the API accepts.
    turn = {"role": "assistant", "content": reply.content()}
    if _beta(blocks):
        assert _deep(BETA_PARAM.validate_python(turn)) == turn
    else:
        assert_message_param(turn)


async def test_usage_counts_web_fetches_and_searches(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(blocks=(*SCENARIOS["web-fetch"],
                               ServerToolUse("srvtoolu_w", {"query": "q"}), UnknownEvent())))
    events = await _raw_events(fake, {"model": MODEL, "max_tokens": 64, "messages": PROMPT,
                                      "stream": True})
    assert events[-2]["usage"]["server_tool_use"] == {"web_search_requests": 1,
                                                      "web_fetch_requests": 2}
    assert "container" not in events[-2]["delta"]


@pytest.mark.parametrize("stop_reason", ["compaction", "model_context_window_exceeded"])
async def test_the_newer_stop_reasons_are_the_sdk_s(fake: FakeAnthropic, stop_reason: str) -> None:
    fake.enqueue(Reply(blocks=SCENARIOS["compaction"], stop_reason=stop_reason))
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk, sdk.beta.messages.stream(
        model=MODEL, max_tokens=64, messages=BETA_PROMPT
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == stop_reason


async def test_files_a_reply_named_have_metadata_and_others_are_not_found(
    fake: FakeAnthropic,
) -> None:
    fake.files_created["file_011plot"] = "plot.png"
    fake.enqueue(Reply(blocks=SCENARIOS["code-execution"] + SCENARIOS["bash"]))
    await _raw_events(fake, {"model": MODEL, "max_tokens": 64, "messages": PROMPT,
                             "stream": True})
    assert fake.files_created == {"file_011plot": "plot.png", "file_011a": "file_011a.txt",
                                  "file_011b": "file_011b.txt"}
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        plot = await sdk.beta.files.retrieve_metadata("file_011plot",
                                                     betas=["files-api-2025-04-14"])
        text = await sdk.beta.files.retrieve_metadata("file_011a")
        with pytest.raises(anthropic.NotFoundError):
            await sdk.beta.files.retrieve_metadata("file_011never")
        fake.file_error = HttpError(500, "api_error")
        with pytest.raises(anthropic.InternalServerError):
            await sdk.beta.files.retrieve_metadata("file_011a")
    _assert_declared(plot)
    assert (plot.id, plot.filename, plot.mime_type, plot.type) == (
        "file_011plot", "plot.png", "image/png", "file")
    assert (text.filename, text.mime_type, text.downloadable) == (
        "file_011a.txt", "text/plain", True)
    assert fake.file_requests[0]["anthropic-beta"] == "files-api-2025-04-14"
    assert fake.requests[0].path == "/v1/messages"
    assert len(fake.requests) == 1  # file lookups are not messages requests


async def test_a_file_lookup_with_a_wrong_key_is_401(fake: FakeAnthropic) -> None:
    fake.files_created["file_011a"] = "a.txt"
    async with anthropic.AsyncAnthropic(api_key="sk-ant-wrong", base_url=fake.base_url,
                                        max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError):
            await sdk.beta.files.retrieve_metadata("file_011a")
