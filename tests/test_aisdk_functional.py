"""The AI SDK's own client against sseserver: tests/node/aisdk_client.mjs drives the pinned
`ai` package's DefaultChatTransport and @ai-sdk/react's Chat (the class useChat runs) at a
`python -m sseserver` process, on each stream store, with the fake Anthropic API upstream
(docs/protocol.md, "The AI SDK's chat route"). What the SDK assembled is compared with what
the fake sent; the fake counts the upstream requests and times their close.

Each test prints what it measured (run with -s to see it)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .support.aisdk_node import NodeClient, require_ai_sdk, run_client
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.fake_blocks import (
    ENCRYPTED,
    SIGNATURE,
    BashResult,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    McpToolResult,
    McpToolUse,
    RedactedThinking,
    ServerToolUse,
    Text,
    TextEditorResult,
    Thinking,
    ToolSearchResult,
    ToolUse,
    UnknownBlock,
    WebFetchResult,
    WebSearchResult,
    web_citation,
    web_result,
)
from .support.jwt_issuer import AUDIENCE, claims, hs256, secret_file
from .support.processes import Processes, ServerProcess, processes
from .support.sample_files import PDF_SENTENCE, b64, pdf, png, sha256
from .support.sse_client import open_sse

__all__ = ["processes", "secret_file"]

# JSON's special characters, a line break, non-ASCII and an emoji: what a splice of raw
# JSON into the chunks would get wrong first.
CHUNKS = ["Hello", ", \"wörld\"", " \\ back", "slash\n", "second line ", "😀 ", "<b>&amp;</b>",
          " tab\there", " 中文", " end."] + [f" w{i}" for i in range(14)]
FULL = "".join(CHUNKS)


@pytest.fixture(params=["memory", "redis"])
async def server(
    request: pytest.FixtureRequest, processes: Processes, fake_anthropic: FakeAnthropic
) -> ServerProcess:
    require_ai_sdk()
    store = [] if request.param == "memory" else [
        "--redis-url", request.getfixturevalue("redis_url")]
    return await processes.sseserver(fake_anthropic, "--resume-window", "5", "--web-search", "3",
                                     "--max-tokens", "8192", *store)


def _assistant(result: dict[str, object]) -> dict[str, object]:
    messages = result["messages"]
    assert isinstance(messages, list)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assistant: dict[str, object] = messages[1]
    return assistant


def _text(message: dict[str, object]) -> str:
    parts = message["parts"]
    assert isinstance(parts, list)
    return "".join(p["text"] for p in parts if p["type"] == "text")


async def test_the_sdk_assembles_the_fake_s_text_exactly(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.005))
    result = await run_client("reply", server.url, "Tell me \"something\"")
    assert (result["status"], result["errors"]) == ("ready", [])
    user, assistant = result["messages"]
    assert user["parts"] == [{"type": "text", "text": "Tell me \"something\""}]
    assert assistant["parts"] == [
        {"type": "step-start"}, {"type": "text", "text": FULL, "state": "done"}]
    assert result["finishes"] == [{"id": assistant["id"], "isAbort": False,
                                   "isDisconnect": False, "isError": False,
                                   "finishReason": "stop"}]
    assert len(fake_anthropic.requests) == 1
    assert fake_anthropic.requests[0].body["messages"] == [
        {"role": "user", "content": "Tell me \"something\""}]
    # Over and delivered: the reconnect route has nothing to resume.
    assert result["resumeAfterEnd"] == 204
    assert result["messagesAfterResume"] == 2


async def test_a_cut_connection_resumes_with_the_whole_reply_once(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.03))
    result = await run_client("reconnect", server.url, "hi")
    cut = result["afterCut"]
    assert cut["status"] == "error"
    assert 0 < len(cut["text"]) < len(FULL)
    assert FULL.startswith(cut["text"])
    assistant = _assistant(result)
    # The replay rebuilt the message in place: same id, one text part, the whole text.
    assert assistant["id"] == cut["messageId"]
    assert assistant["parts"] == [
        {"type": "step-start"}, {"type": "text", "text": FULL, "state": "done"}]
    disconnect, resumed = result["finishes"]
    assert (disconnect["isDisconnect"], resumed["finishReason"]) == (True, "stop")
    assert result["status"] == "ready"
    assert len(fake_anthropic.requests) == 1
    assert result["resumeAfterEnd"] == 204
    print(f"\ncut after {len(cut['text'])} of {len(FULL)} characters; one upstream request")


async def test_a_reconnect_after_the_reply_ended_still_gets_all_of_it(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.01))
    client = await NodeClient.start("late", server.url, "hi")
    try:
        cut = await client.line()
        assert 0 < len(cut["text"]) < len(FULL)
        # The message id is the stream's: read it natively until its end is stored.
        async with await open_sse(f"{server.url}/api/streams/{cut['messageId']}") as native:
            await native.read_all()
        assert native.text == FULL
        client.tell("go")
        result = await client.line()
    finally:
        await client.close()
    assistant = _assistant(result)
    assert assistant["parts"] == [
        {"type": "step-start"}, {"type": "text", "text": FULL, "state": "done"}]
    assert result["finishes"][-1]["finishReason"] == "stop"
    assert len(fake_anthropic.requests) == 1
    # Given once: now that this client has the end, there is nothing to resume.
    assert result["resumeAfterEnd"] == 204


async def test_stop_with_the_documented_delete_closes_the_upstream_within_100ms(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 300, delay=0.02))
    result = await run_client("stop", server.url, "hi")
    stopped = int(result["stoppedAtNs"]) / 1e9  # Node's hrtime: CLOCK_MONOTONIC, as ours
    closed = await fake_anthropic.wait_closed(0)
    print(f"\nStop to the upstream connection's close: {(closed - stopped) * 1000:.1f} ms")
    assert closed - stopped < 0.1
    assert result["deleteStatus"] == 204
    assistant = _assistant(result)
    partial = _text(assistant)
    assert partial
    assert ("tok " * 300).startswith(partial)
    assert len(partial) < 300 * 4
    assert result["finishes"] == [{"id": assistant["id"], "isAbort": True,
                                   "isDisconnect": False, "isError": False}]
    assert result["resumeAfterEnd"] == 204
    assert result["messagesAfterResume"] == 2
    assert len(fake_anthropic.requests) == 1
    # What was written stays readable for the window, at the native route.
    async with await open_sse(f"{server.url}/api/streams/{assistant['id']}") as native:
        await native.read_all()
    assert native.text.startswith(partial)
    assert native.types()[-2:] == ["usage", "done"]
    assert '"stop_reason":"cancelled"' in native.events[-2].data


SEARCH_REPLY = Reply(blocks=(
    Thinking(["Let me ", "look that up."]),
    RedactedThinking(),
    ServerToolUse("srvtoolu_01", {"query": "sse resume"}),
    WebSearchResult("srvtoolu_01", [web_result("Spec", "https://html.spec.test/sse", "2 days"),
                                    web_result("Blog", "https://blog.test/sse")]),
    Text(["Events carry ids"], citations=[
        web_citation("https://html.spec.test/sse", "Spec", "the last event ID")]),
    Text([", and a reconnect sends the last one."]),
), delay=0.03)  # the cut test needs the reply still running when it cuts
SEARCH_PARTS = [
    {"type": "step-start"},
    {"type": "reasoning", "id": "r1", "text": "Let me look that up.", "state": "done"},
    {"type": "reasoning", "id": "r3", "text": "", "state": "done",
     "providerMetadata": {"sseserver": {"thinkingHidden": "redacted"}}},
    {"type": "tool-web_search", "toolCallId": "srvtoolu_01", "state": "output-available",
     "input": {"query": "sse resume"}, "providerExecuted": True, "output": [
         {"type": "web_search_result", "url": "https://html.spec.test/sse", "title": "Spec",
          "pageAge": "2 days"},
         {"type": "web_search_result", "url": "https://blog.test/sse", "title": "Blog",
          "pageAge": None}]},
    {"type": "text", "text": "Events carry ids", "state": "done", "citations": [
        {"source": {"type": "source", "sourceType": "url", "id": "https://html.spec.test/sse",
                    "url": "https://html.spec.test/sse", "title": "Spec"},
         "citedText": "the last event ID"}]},
    {"type": "source-url", "sourceId": "https://html.spec.test/sse",
     "url": "https://html.spec.test/sse", "title": "Spec"},
    {"type": "text", "text": ", and a reconnect sends the last one.", "state": "done"},
]


async def test_thinking_search_and_citations_become_the_sdk_s_parts(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(SEARCH_REPLY)
    result = await run_client("reply", server.url, "How does resume work?",
                              body={"max_tokens": 4096, "thinking": 2048, "web_search": "on"})
    assert (result["status"], result["errors"]) == ("ready", [])
    assert _assistant(result)["parts"] == SEARCH_PARTS
    assert result["finishes"][0]["finishReason"] == "stop"
    # The options in the transport's body reached Claude as the native routes send them.
    sent = fake_anthropic.requests[0].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048,
                                "display": "summarized"}
    assert sent["tools"] == [{"type": "web_search_20250305", "name": "web_search",
                              "max_uses": 3}]


async def test_a_cut_during_a_searched_reply_resumes_it_whole(
    server: ServerProcess, fake_anthropic: FakeAnthropic
) -> None:
    """A reply with every kind of part is rebuilt by the replay exactly as sent whole."""
    fake_anthropic.enqueue(SEARCH_REPLY)
    result = await run_client("reconnect", server.url, "How does resume work?")
    assert result["afterCut"]["status"] == "error"
    assert _assistant(result)["parts"] == SEARCH_PARTS
    assert len(fake_anthropic.requests) == 1


# ---- tools (docs/protocol.md, "Tools", and "The AI SDK's chat route") ----

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
TOOLS = [
    {"name": "lookup", "description": "Looks a question up.", "input_schema": SCHEMA,
     "handler": "tests.support.tool_handlers:recorded"},
    {"name": "guarded", "description": "Acts, once the user agrees.", "input_schema": SCHEMA,
     "needs_approval": True, "handler": "tests.support.tool_handlers:recorded"},
    {"name": "locate", "description": "The user's locale, from the browser.",
     "input_schema": {"type": "object", "properties": {}}},
]
# What the Node client's app answers for `locate` (CLIENT_OUTPUTS in aisdk_client.mjs).
LOCATION = {"locale": "fr-FR", "timeZone": "Europe/Paris"}


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file tests.support.tool_handlers:recorded writes each run to, in the server process."""
    path = tmp_path / "runs.jsonl"
    path.touch()
    monkeypatch.setenv("RECORDED_RUNS", str(path))
    return path


def _runs(path: Path) -> list[object]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(params=["memory", "redis"])
async def tool_server(
    request: pytest.FixtureRequest, processes: Processes, fake_anthropic: FakeAnthropic,
    tmp_path: Path, runs: Path,
) -> ServerProcess:
    require_ai_sdk()
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    store = [] if request.param == "memory" else [
        "--redis-url", request.getfixturevalue("redis_url")]
    return await processes.sseserver(fake_anthropic, "--tools", str(tools), "--max-tokens",
                                     "8192", *store)


async def test_a_server_tool_s_chunks_make_its_part_and_the_next_step(
    tool_server: ServerProcess, fake_anthropic: FakeAnthropic, runs: Path,
) -> None:
    """The server runs the call between two upstream requests of one reply: the SDK shows
    the call with its input and output, the server's (no onToolCall), and the answer in
    the message's next step."""
    fake_anthropic.enqueue(
        Reply(blocks=(Text(["Let me look. "]), ToolUse("toolu_01", "lookup", {"q": "life"})),
              stop_reason="tool_use", delay=0.005),
        Reply(chunks=["The answer ", "is 42."]))
    result = await run_client("tools", tool_server.url, "What is the answer?")
    assert (result["status"], result["errors"], result["toolCalls"]) == ("ready", [], [])
    assert _assistant(result)["parts"] == [
        {"type": "step-start"},
        {"type": "text", "text": "Let me look. ", "state": "done"},
        {"type": "tool-lookup", "toolCallId": "toolu_01", "state": "output-available",
         "input": {"q": "life"}, "output": "done: life", "providerExecuted": True},
        {"type": "step-start"},
        {"type": "text", "text": "The answer is 42.", "state": "done"},
    ]
    assert [f["finishReason"] for f in result["finishes"]] == ["stop"]
    assert len(result["sent"]) == 1  # nothing for the client to send back
    assert _runs(runs) == [{"q": "life"}]
    assert fake_anthropic.requests[1].body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "done: life"}]}


async def test_a_client_tool_round_trip_with_useChat_s_own_loop(
    tool_server: ServerProcess, fake_anthropic: FakeAnthropic, runs: Path,
) -> None:
    """onToolCall, addToolOutput, then sendAutomaticallyWhen: the reply that asked for the
    call ends, the SDK sends the output back by itself, and Claude gets the turn exactly as
    it made it, its signed thinking first (the fake refuses it otherwise), then the
    output; the answer continues the same message."""
    calls = Reply(blocks=(Thinking(["I need ", "the locale."]), Text(["Asking your browser. "]),
                          ToolUse("toolu_c1", "locate", {})), stop_reason="tool_use", delay=0.005)
    fake_anthropic.enqueue(calls, Reply(chunks=["You are in ", "Paris."]))
    result = await run_client("tools", tool_server.url, "Where am I?",
                              body={"max_tokens": 4096, "thinking": 2048})
    assert (result["status"], result["errors"]) == ("ready", [])
    assert result["toolCalls"] == [{"type": "tool-input-available", "toolCallId": "toolu_c1",
                                    "toolName": "locate", "input": {}}]
    assistant = _assistant(result)
    assert assistant["parts"] == [
        {"type": "step-start"},
        {"type": "reasoning", "id": "r1", "text": "I need the locale.", "state": "done",
         "providerMetadata": {"anthropic": {"signature": SIGNATURE}}},
        {"type": "text", "text": "Asking your browser. ", "state": "done"},
        {"type": "tool-locate", "toolCallId": "toolu_c1", "state": "output-available",
         "input": {}, "output": LOCATION},
        {"type": "step-start"},
        {"type": "text", "text": "You are in Paris.", "state": "done"},
    ]
    assert [f["finishReason"] for f in result["finishes"]] == ["tool-calls", "stop"]
    assert {f["id"] for f in result["finishes"]} == {assistant["id"]}  # one message
    first, second = result["sent"]
    assert (first["trigger"], second["trigger"]) == ("submit-message", "submit-message")
    assert second["messageId"] == assistant["id"]
    assert len(fake_anthropic.requests) == 2
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "Where am I?"},
        {"role": "assistant", "content": calls.content()},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_c1",
                                      "content": json.dumps(LOCATION)}]},
    ]
    assert _runs(runs) == []
    assert result["resumeAfterEnd"] == 204


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_a_tool_that_needs_approval_runs_only_once_approved(
    processes: Processes, fake_anthropic: FakeAnthropic, tmp_path: Path, runs: Path,
    decision: str,
) -> None:
    """The AI SDK's approval flow: tool-approval-request, addToolApprovalResponse, and
    useChat sends the decision by itself; the server runs the approved call (once) or
    answers a denied one as denied, and Claude continues."""
    require_ai_sdk()
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    server = await processes.sseserver(fake_anthropic, "--tools", str(tools))
    fake_anthropic.enqueue(
        Reply(blocks=(Text(["I'll run it. "]), ToolUse("toolu_g1", "guarded", {"q": "x"})),
              stop_reason="tool_use", delay=0.005),
        Reply(chunks=["Done ", "as asked."]))
    result = await run_client(decision, server.url, "Please do it")
    assert (result["status"], result["errors"], result["toolCalls"]) == ("ready", [], [])
    assert result["asked"] == {
        "type": "tool-guarded", "toolCallId": "toolu_g1", "state": "approval-requested",
        "input": {"q": "x"}, "providerExecuted": True, "approval": {"id": "toolu_g1"}}
    sent = result["sent"][1]["messages"][-1]["parts"][2]
    approved = decision == "approve"
    assert sent["state"] == "approval-responded"
    assert sent["approval"]["approved"] is approved
    parts: list[dict[str, Any]] = _assistant(result)["parts"]  # type: ignore[assignment]
    tool_part = parts[2]
    outcome: dict[str, Any]
    if approved:
        outcome = {"type": "tool_result", "tool_use_id": "toolu_g1", "content": "done: x"}
        assert (tool_part["state"], tool_part["output"]) == ("output-available", "done: x")
        assert _runs(runs) == [{"q": "x"}]
    else:
        outcome = {"type": "tool_result", "tool_use_id": "toolu_g1", "is_error": True,
                   "content": "The user denied this tool call. Reason: not today"}
        assert tool_part["state"] == "output-denied"
        assert _runs(runs) == []
    assert [p["type"] for p in parts] == [
        "step-start", "text", "tool-guarded", "step-start", "text"]
    assert _text(_assistant(result)) == "I'll run it. Done as asked."
    assert fake_anthropic.requests[1].body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll run it. "},
            {"type": "tool_use", "id": "toolu_g1", "name": "guarded", "input": {"q": "x"}}]},
        {"role": "user", "content": [outcome]},
    ]
async def test_an_image_and_a_pdf_reach_claude_and_the_pdf_is_cited(
    server: ServerProcess, fake_anthropic: FakeAnthropic, tmp_path: Path,
) -> None:
    """useChat's file parts (data: URLs, as it makes them of a FileList) reach the API byte
    for byte as image and document blocks; the document's citation comes back as a
    source-document part and on the text part (protocol.md, "The AI SDK's chat route")."""
    image, document = png(24, 24), pdf(50_000)
    files = tmp_path / "files.json"
    files.write_text(json.dumps([
        {"type": "file", "mediaType": "image/png", "filename": "board.png",
         "url": f"data:image/png;base64,{b64(image)}"},
        {"type": "file", "mediaType": "application/pdf", "filename": "Lease.pdf",
         "url": f"data:application/pdf;base64,{b64(document)}"},
    ]))
    result = await run_client("reply", server.url, "When is rent due?", files=files)
    assert (result["status"], result["errors"]) == ("ready", [])
    [sent] = fake_anthropic.requests
    assert sent.files == [("image", "image/png", sha256(image)),
                          ("document", "application/pdf", sha256(document))]
    content = sent.body["messages"][0]["content"]
    assert content[1]["title"] == "Lease.pdf"
    assert content[2] == {"type": "text", "text": "When is rent due?"}
    user = result["messages"][0]
    assert [p["type"] for p in user["parts"]] == ["file", "file", "text"]
    parts = _assistant(result)["parts"]
    assert isinstance(parts, list)
    assert {"type": "source-document", "sourceId": "doc-0", "mediaType": "application/pdf",
            "title": "Lease.pdf"} in parts
    assert _text(_assistant(result)) == ("I read 1 document(s).\n"
                                          "From Lease.pdf: see the cited passage.\n")
    # The same reply as the native stream (its id is the message's): the page range too.
    stream = await open_sse(server.url + f"/api/streams/{_assistant(result)['id']}")
    async with stream:
        await stream.read_all()
    cited = [json.loads(e.data) for e in stream.events if e.type == "citation"]
    assert cited == [{"url": None, "title": "Lease.pdf", "cited_text": PDF_SENTENCE,
                      "type": "page_location", "document_index": 0,
                      "start_page_number": 1, "end_page_number": 2}]
async def test_the_transport_s_headers_option_carries_a_user_s_token(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str, secret_file: Path,
) -> None:
    """With users (docs/operations.md, "Users"), `DefaultChatTransport({headers})` sends
    the token with every request, its reconnect included, and Stop's DELETE adds it: a
    reply cut mid-way resumes whole, as the user's own. Without it, the SDK reports our
    401 as its error."""
    require_ai_sdk()
    server = await processes.sseserver(
        fake_anthropic, "--redis-url", redis_url, "--jwt-secret-file", str(secret_file),
        "--jwt-audience", AUDIENCE, "--resume-window", "5")
    token = hs256(claims("sdk-user"))
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.03))
    result = await run_client("reconnect", server.url, "hi", bearer=token)
    # The only error is the cut itself; the reconnect, with the token, resumed it whole.
    assert (result["status"], result["errors"]) == ("ready", ["network error"])
    assert _assistant(result)["parts"] == [
        {"type": "step-start"}, {"type": "text", "text": FULL, "state": "done"}]
    assert len(fake_anthropic.requests) == 1
    assert result["resumeAfterEnd"] == 204
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.03))
    stopped = await run_client("stop", server.url, "hi", bearer=token)
    assert stopped["deleteStatus"] == 204
    refused = await run_client("reply", server.url, "hi")
    assert refused["status"] == "error"
    assert json.loads(refused["errors"][0])["error"]["type"] == "token_missing"
    assert len(fake_anthropic.requests) == 2


# ---- Claude's server tools, MCP, compaction and the container (docs/protocol.md, "The AI
# SDK's chat route") ----

MCP_SERVERS = [{"name": "tracker", "url": "https://mcp.tracker.test/sse"}]
CONTAINER = {"id": "container_011CNab", "expires_at": "2099-12-06T13:00:00Z"}
VIEW = {"type": "text_editor_code_execution_view_result", "file_type": "text",
        "content": "hello", "num_lines": 1, "start_line": 1, "total_lines": 1}
EVERY_BLOCK = Reply(blocks=(
    Compaction(["Earlier: the user asked ", "about SSE."]),
    ServerToolUse("srvtoolu_f", {"url": "https://a.test/page"}, name="web_fetch"),
    WebFetchResult("srvtoolu_f", "https://a.test/page", title="Page A"),
    ServerToolUse("srvtoolu_b", {"command": "ls"}, name="bash_code_execution"),
    BashResult("srvtoolu_b", stdout="a.txt\n", file_ids=("file_01",)),
    ServerToolUse("srvtoolu_e", {"command": "view", "path": "/tmp/a.txt"},
                  name="text_editor_code_execution"),
    TextEditorResult("srvtoolu_e", VIEW),
    ServerToolUse("srvtoolu_c", {"code": "print(1)"}, name="code_execution"),
    CodeExecutionResult("srvtoolu_c", stdout="1\n"),
    ServerToolUse("srvtoolu_s", {"pattern": "look"}, name="tool_search_tool_regex"),
    ToolSearchResult("srvtoolu_s", ("lookup",)),
    McpToolUse("mcptoolu_1", "get_issue", "tracker", {"n": 7}),
    McpToolResult("mcptoolu_1", ["Ticket 7", "is open"]),
    ContainerUpload("file_up"),
    UnknownBlock(),
    Text(["All ", "done."]),
), container=CONTAINER, delay=0.003)
COMPACTION_BLOCK = EVERY_BLOCK.content()[0]
MCP_METADATA = {"anthropic": {"type": "mcp-tool-use", "serverName": "tracker"}}


def _executed(part_type: str, call: str, tool_input: object, output: object) -> dict[str, Any]:
    return {"type": part_type, "toolCallId": call, "state": "output-available",
            "input": tool_input, "output": output, "providerExecuted": True}


EVERY_PART: list[dict[str, Any]] = [
    {"type": "step-start"},
    {"type": "data-compaction", "id": "c1", "data": {
        "content": "Earlier: the user asked about SSE.", "block": COMPACTION_BLOCK}},
    _executed("tool-web_fetch", "srvtoolu_f", {"url": "https://a.test/page"}, {
        "type": "web_fetch_result", "url": "https://a.test/page",
        "retrievedAt": "2026-12-06T12:00:00Z", "content": {"type": "document",
                                                          "title": "Page A"}}),
    {"type": "source-url", "sourceId": "https://a.test/page", "url": "https://a.test/page",
     "title": "Page A"},
    _executed("tool-code_execution", "srvtoolu_b",
              {"type": "bash_code_execution", "command": "ls"}, {
                  "type": "bash_code_execution_result", "stdout": "a.txt\n", "stderr": "",
                  "return_code": 0, "content": [{"type": "bash_code_execution_output",
                                                 "file_id": "file_01",
                                                 "name": "file_01.txt"}]}),
    _executed("tool-code_execution", "srvtoolu_e",
              {"type": "text_editor_code_execution", "command": "view", "path": "/tmp/a.txt"},
              VIEW),
    _executed("tool-code_execution", "srvtoolu_c",
              {"type": "programmatic-tool-call", "code": "print(1)"}, {
                  "type": "code_execution_result", "stdout": "1\n", "stderr": "",
                  "return_code": 0, "content": []}),
    _executed("tool-tool_search_tool_regex", "srvtoolu_s", {"pattern": "look"},
              [{"type": "tool_reference", "toolName": "lookup"}]),
    {"type": "dynamic-tool", "toolName": "get_issue", "toolCallId": "mcptoolu_1",
     "state": "output-available", "input": {"n": 7},
     "output": [{"type": "text", "text": "Ticket 7\nis open"}], "providerExecuted": True,
     "callProviderMetadata": MCP_METADATA, "resultProviderMetadata": MCP_METADATA},
    {"type": "data-file", "id": "f14", "data": {"fileId": "file_up"}},
    {"type": "data-unsupported", "id": "u15", "data": {
        "kind": "block", "type": "future_block", "data": {"type": "future_block", "x": 1}}},
    {"type": "text", "text": "All done.", "state": "done"},
]
EVERY_OPTION = {"web_fetch": "on", "code_execution": "on", "tool_search": "on"}


@pytest.fixture(params=["memory", "redis"])
async def every_tool_server(
    request: pytest.FixtureRequest, processes: Processes, fake_anthropic: FakeAnthropic,
    tmp_path: Path, runs: Path,
) -> ServerProcess:
    require_ai_sdk()
    tools, mcp = tmp_path / "tools.json", tmp_path / "mcp.json"
    tools.write_text(json.dumps(TOOLS))
    mcp.write_text(json.dumps(MCP_SERVERS))
    store = [] if request.param == "memory" else [
        "--redis-url", request.getfixturevalue("redis_url")]
    return await processes.sseserver(
        fake_anthropic, "--tools", str(tools), "--tool-search", "on", "--web-fetch", "2",
        "--code-execution", "on", "--mcp-servers", str(mcp), "--compaction", "on",
        "--resume-window", "5", *store)


async def test_every_server_block_becomes_the_part_the_sdk_assembles(
    every_tool_server: ServerProcess, fake_anthropic: FakeAnthropic,
) -> None:
    """A reply with a block of every new kind: the SDK's message holds each as
    @ai-sdk/anthropic's own parts would be, the server's (no onToolCall), in one step, and
    the container in the message's metadata."""
    fake_anthropic.enqueue(EVERY_BLOCK)
    result = await run_client("reply", every_tool_server.url, "Use everything",
                              body=EVERY_OPTION)
    assert (result["status"], result["errors"], result["toolCalls"]) == ("ready", [], [])
    assistant = _assistant(result)
    assert assistant["parts"] == EVERY_PART
    assert assistant["metadata"] == {"container": {"id": CONTAINER["id"],
                                                   "expiresAt": CONTAINER["expires_at"]}}
    assert result["finishes"][0]["finishReason"] == "stop"
    assert len(result["sent"]) == 1


async def test_a_cut_before_the_server_blocks_resumes_them_whole(
    every_tool_server: ServerProcess, fake_anthropic: FakeAnthropic,
) -> None:
    """The connection drops in the text before the blocks; the transport's reconnect
    rebuilds the message with every one of them, as an uninterrupted reply makes it."""
    opening = ["Let ", "me ", "use ", "them ", "all."]
    fake_anthropic.enqueue(replace(EVERY_BLOCK, blocks=(Text(opening), *EVERY_BLOCK.blocks),
                                   delay=0.02))
    result = await run_client("reconnect", every_tool_server.url, "Use everything",
                              body=EVERY_OPTION)
    assert result["afterCut"]["status"] == "error"
    cut = result["afterCut"]["text"]
    assert 0 < len(cut) < len("".join(opening))  # cut in the text, before the blocks
    assert "".join(opening).startswith(cut)
    assistant = _assistant(result)
    shifted = [p | {"id": p["id"][0] + str(int(p["id"][1:]) + len(opening))}
               if p["type"].startswith("data-") else p for p in EVERY_PART]
    assert assistant["parts"] == [shifted[0], {"type": "text", "text": "".join(opening),
                                               "state": "done"}, *shifted[1:]]
    metadata: Any = assistant["metadata"]
    assert metadata["container"]["id"] == CONTAINER["id"]
    assert len(fake_anthropic.requests) == 1


async def test_the_container_and_the_compaction_come_back_on_the_next_turn(
    every_tool_server: ServerProcess, fake_anthropic: FakeAnthropic,
) -> None:
    """useChat keeps the message's metadata and its data-compaction part, and posts them
    back: the second upstream request runs in the first reply's container, with the
    compaction block first in that assistant turn, exactly as the API gave it."""
    first = Reply(blocks=(
        Compaction(["Summary so far."]),
        ServerToolUse("srvtoolu_b", {"command": "echo hi > a.txt"},
                      name="bash_code_execution"),
        BashResult("srvtoolu_b"),
        Text(["Wrote a.txt."]),
    ), container=CONTAINER)
    fake_anthropic.enqueue(first, Reply(chunks=["It is ", "still there."]))
    result = await run_client("twice", every_tool_server.url, "Write a file",
                              body={"code_execution": "on"})
    assert (result["status"], result["errors"]) == ("ready", [])
    assert [m["role"] for m in result["messages"]] == ["user", "assistant"] * 2
    sent_second = result["sent"][1]["messages"][1]
    assert sent_second["metadata"] == {"container": {"id": CONTAINER["id"],
                                                     "expiresAt": CONTAINER["expires_at"]}}
    assert len(fake_anthropic.requests) == 2
    upstream = fake_anthropic.requests[1].body
    assert upstream["container"] == CONTAINER["id"]
    assert "container" not in fake_anthropic.requests[0].body
    assert upstream["messages"] == [
        {"role": "user", "content": "Write a file"},
        {"role": "assistant", "content": [
            {"type": "compaction", "content": "Summary so far.", "encrypted_content": ENCRYPTED,
             "signature": SIGNATURE},
            {"type": "text", "text": "Wrote a.txt."}]},
        {"role": "user", "content": "And then?"},
    ]
