"""The mapping of our events (shapes as docs/protocol.md fixes them) to the AI SDK's UI
message chunks (the `ai` package's ui-message-chunks.ts), frame by frame: the frames are
made by the server's own encoder (sse.StreamFrames), the chunks compared as parsed JSON and,
for text, as the exact bytes. Tool events (docs/protocol.md, "Tools") are mapped with the
roles the offered tools give them."""

from __future__ import annotations

import json
from typing import Any

from sseserver.aisdk.chunks import CUT_SHORT, LOST, ToolRoles, UIChunks
from sseserver.sse import StreamFrames
from sseserver.tools.definitions import tool_specs

USAGE = {"input_tokens": 5, "output_tokens": 7, "stop_reason": "end_turn"}


def _map(*events: tuple[str, Any], end: bool = False) -> list[Any]:
    frames = StreamFrames("S")
    chunks = UIChunks("S")
    out: list[bytes] = []
    for name, data in events:
        frame = frames.message(data) if name == "message" else frames.event(name, data)
        chunks.frame(frame, out)
    if end:
        chunks.cut_short(out)
    for raw in out:
        assert raw.startswith(b"data: ")
        assert raw.endswith(b"\n\n")
        assert b"\n" not in raw[:-2]
    return [json.loads(raw[6:]) if raw != b"data: [DONE]\n\n" else "[DONE]" for raw in out]


META = ("meta", {"stream": "S", "model": "m", "provider": "anthropic"})
START = [{"type": "start", "messageId": "S"}, {"type": "start-step"}]
FINISH = [{"type": "finish-step"}, {"type": "finish", "finishReason": "stop"}, "[DONE]"]


def test_text_deltas_are_spliced_byte_for_byte() -> None:
    frames = StreamFrames("S")
    chunks = UIChunks("S")
    out: list[bytes] = []
    chunks.frame(frames.event("meta", {}), out)
    chunks.frame(frames.message('a "quoted" \\ line\nbreak \U0001f600 \u2028'), out)
    assert out[-1] == ('data: {"type":"text-delta","id":"t1","delta":'
                       '"a \\"quoted\\" \\\\ line\\nbreak \U0001f600 \u2028"}\n\n').encode()


def test_a_lone_surrogate_reaches_the_client_as_an_escape() -> None:
    got = _map(META, ("message", "x\ud800y"))
    assert got[-1] == {"type": "text-delta", "id": "t1", "delta": "x\ud800y"}


def test_thinking_then_text() -> None:
    assert _map(META, ("thinking", "Let me"), ("thinking", " think."), ("message", "Hi"),
                ("usage", USAGE), ("done", "[DONE]")) == [
        *START,
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "Let me"},
        {"type": "reasoning-delta", "id": "r1", "delta": " think."},
        {"type": "reasoning-end", "id": "r1"},
        {"type": "text-start", "id": "t3"},
        {"type": "text-delta", "id": "t3", "delta": "Hi"},
        {"type": "text-end", "id": "t3"},
        *FINISH,
    ]


def test_hidden_thinking_is_an_empty_marked_reasoning_part() -> None:
    assert _map(META, ("thinking_hidden", {"reason": "redacted"}), ("message", "Hi"))[2:] == [
        {"type": "reasoning-start", "id": "r1",
         "providerMetadata": {"sseserver": {"thinkingHidden": "redacted"}}},
        {"type": "reasoning-end", "id": "r1"},
        {"type": "text-start", "id": "t2"},
        {"type": "text-delta", "id": "t2", "delta": "Hi"},
    ]


def test_a_web_search_a_cited_text_block_and_the_next_block() -> None:
    tool = {"id": "srvtoolu_1", "name": "web_search", "input": {"query": "news"}}
    results = {"tool_use_id": "srvtoolu_1", "name": "web_search", "results": [
        {"title": "A", "url": "https://a.test/", "page_age": "1 day"},
        {"title": None, "url": "https://b.test/", "page_age": None}]}
    cite_a = {"url": "https://a.test/", "title": "A", "cited_text": "a says"}
    cite_b = {"url": "https://b.test/", "title": None, "cited_text": "b says"}
    source_a = {"type": "source", "sourceType": "url", "id": "https://a.test/",
                "url": "https://a.test/", "title": "A"}
    source_b = {"type": "source", "sourceType": "url", "id": "https://b.test/",
                "url": "https://b.test/"}
    assert _map(META, ("message", "Searching."), ("tool", tool), ("tool_result", results),
                ("message", "A and B"), ("citation", cite_a), ("citation", cite_b),
                ("message", " agree,"), ("citation", cite_a), ("message", " see."),
                ("usage", USAGE), ("done", "[DONE]")) == [
        *START,
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "Searching."},
        {"type": "text-end", "id": "t1"},
        {"type": "tool-input-available", "toolCallId": "srvtoolu_1", "toolName": "web_search",
         "input": {"query": "news"}, "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_1", "providerExecuted": True,
         "output": [{"type": "web_search_result", "url": "https://a.test/", "title": "A",
                     "pageAge": "1 day"},
                    {"type": "web_search_result", "url": "https://b.test/", "title": None,
                     "pageAge": None}]},
        {"type": "text-start", "id": "t4"},
        {"type": "text-delta", "id": "t4", "delta": "A and B"},
        {"type": "source-url", "sourceId": "https://a.test/", "url": "https://a.test/",
         "title": "A"},
        {"type": "source-url", "sourceId": "https://b.test/", "url": "https://b.test/"},
        {"type": "text-end", "id": "t4", "citations": [
            {"source": source_a, "citedText": "a says"},
            {"source": source_b, "citedText": "b says"}]},
        {"type": "text-start", "id": "t7"},
        {"type": "text-delta", "id": "t7", "delta": " agree,"},
        {"type": "text-end", "id": "t7", "citations": [{"source": source_a,
                                                         "citedText": "a says"}]},
        {"type": "text-start", "id": "t9"},
        {"type": "text-delta", "id": "t9", "delta": " see."},
        {"type": "text-end", "id": "t9"},
        *FINISH,
    ]


def test_a_failed_search_and_a_result_for_no_known_call() -> None:
    tool = {"id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    failed = {"tool_use_id": "srvtoolu_1", "name": "web_search",
              "error": {"code": "max_uses_exceeded"}}
    stray = {"tool_use_id": "srvtoolu_9", "name": "web_search", "results": []}
    assert _map(META, ("tool", tool), ("tool_result", failed), ("tool_result", stray))[2:] == [
        {"type": "tool-input-available", "toolCallId": "srvtoolu_1", "toolName": "web_search",
         "input": {"query": "q"}, "providerExecuted": True},
        {"type": "tool-output-error", "toolCallId": "srvtoolu_1",
         "errorText": "max_uses_exceeded", "providerExecuted": True},
    ]


def test_a_citation_without_a_url_is_skipped() -> None:
    got = _map(META, ("message", "x"), ("citation", {"url": None, "title": "Doc",
                                                      "cited_text": "y"}), ("usage", USAGE))
    assert {"type": "text-end", "id": "t1"} in got
    assert not [c for c in got if c["type"] == "source-url"]


def test_only_http_urls_reach_the_client() -> None:
    """The page links only http(s) URLs; an AI SDK client may link whatever it gets, so a
    `javascript:` or `data:` URL in a citation or a search result never reaches it."""
    tool = {"id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    result = {"tool_use_id": "srvtoolu_1", "name": "web_search", "results": [
        {"url": "javascript:alert(1)", "title": "x", "page_age": None},
        {"url": "HTTPS://example.com/a", "title": "A", "page_age": None},
        {"url": "data:text/html,<script>", "title": "y", "page_age": None},
    ]}
    got = _map(META, ("tool", tool), ("tool_result", result), ("message", "x"),
               ("citation", {"url": "JavaScript:alert(2)", "title": "T", "cited_text": "c"}),
               ("citation", {"url": "http://example.com/b", "title": "B", "cited_text": "d"}),
               ("usage", USAGE))
    [output] = [c for c in got if c["type"] == "tool-output-available"]
    assert [r["url"] for r in output["output"]] == ["HTTPS://example.com/a"]
    assert [c["url"] for c in got if c["type"] == "source-url"] == ["http://example.com/b"]
    [end] = [c for c in got if c["type"] == "text-end"]
    assert [c["source"]["url"] for c in end["citations"]] == ["http://example.com/b"]


def test_document_citations_become_source_documents() -> None:
    """A PDF's page citation and a text document's character citation (protocol.md,
    "Attachments"): one source-document per document, the cited text (and a text's range)
    on the text-end; a document with no title is named by its place."""
    page = {"url": None, "title": "Lease", "cited_text": "Rent is due.",
            "type": "page_location", "document_index": 0, "start_page_number": 2,
            "end_page_number": 3}
    chars = {"url": None, "title": None, "cited_text": "Pay on time.", "type": "char_location",
             "document_index": 1, "start_char_index": 4, "end_char_index": 16}
    got = _map(META, ("message", "Rent"), ("citation", page), ("citation", chars),
               ("message", " and"), ("citation", page), ("usage", USAGE), ("done", "[DONE]"))
    lease = {"type": "source", "sourceType": "document", "id": "doc-0",
             "mediaType": "application/pdf", "title": "Lease"}
    notes = {"type": "source", "sourceType": "document", "id": "doc-1",
             "mediaType": "text/plain", "title": "Document 2"}
    assert got == [
        *START,
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "Rent"},
        {"type": "source-document", "sourceId": "doc-0", "mediaType": "application/pdf",
         "title": "Lease"},
        {"type": "source-document", "sourceId": "doc-1", "mediaType": "text/plain",
         "title": "Document 2"},
        {"type": "text-end", "id": "t1", "citations": [
            {"source": lease, "citedText": "Rent is due."},
            {"source": notes, "citedText": "Pay on time.", "startIndex": 4, "endIndex": 16}]},
        {"type": "text-start", "id": "t4"},
        {"type": "text-delta", "id": "t4", "delta": " and"},
        {"type": "text-end", "id": "t4", "citations": [
            {"source": lease, "citedText": "Rent is due."}]},
        *FINISH,
    ]


def test_stop_reasons_become_finish_reasons() -> None:
    cases = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
             "model_context_window_exceeded": "length", "refusal": "content-filter",
             "tool_use": "tool-calls", None: "other", "something_new": "other"}
    for stop_reason, finish_reason in cases.items():
        got = _map(META, ("usage", USAGE | {"stop_reason": stop_reason}))
        assert got[-1] == {"type": "finish", "finishReason": finish_reason}


def test_a_cancelled_reply_ends_in_abort() -> None:
    assert _map(META, ("message", "par"), ("usage", USAGE | {"stop_reason": "cancelled"}),
                ("done", "[DONE]"))[4:] == [
        {"type": "text-end", "id": "t1"}, {"type": "finish-step"},
        {"type": "abort", "reason": "cancelled"}, "[DONE]"]


def test_an_error_event_ends_the_open_part_then_the_stream() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    assert _map(META, ("thinking", "hm"), ("error", error))[2:] == [
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "hm"},
        {"type": "reasoning-end", "id": "r1"},
        {"type": "error", "errorText": "Overloaded"}, "[DONE]"]


def test_a_stream_that_ended_without_its_last_event_says_so() -> None:
    assert _map(META, ("message", "x"), end=True)[4:] == [
        {"type": "text-end", "id": "t1"}, {"type": "error", "errorText": CUT_SHORT}, "[DONE]"]
    # Nothing more once it has ended properly.
    assert _map(META, ("usage", USAGE), ("done", "[DONE]"), end=True)[-1] == "[DONE]"


def test_a_lost_stream_and_one_with_no_frames_still_start_a_message() -> None:
    chunks = UIChunks("S")
    out: list[bytes] = []
    chunks.fail(LOST, out)
    assert [json.loads(raw[6:]) if raw != b"data: [DONE]\n\n" else "[DONE]" for raw in out] == [
        *START, {"type": "error", "errorText": LOST}, "[DONE]"]


def test_events_the_mapping_does_not_know_are_skipped() -> None:
    assert _map(META, ("future_event", {"x": 1}), ("message", "a")) == [
        *START, {"type": "text-start", "id": "t2"},
        {"type": "text-delta", "id": "t2", "delta": "a"}]


def test_the_same_frames_give_the_same_chunks_every_time() -> None:
    events = (META, ("thinking", "t"), ("message", "a"), ("citation", {
        "url": "https://a.test/", "title": None, "cited_text": "c"}), ("message", "b"),
        ("usage", USAGE), ("done", "[DONE]"))
    assert _map(*events) == _map(*events)


# ---- tools (docs/protocol.md, "Tools"; the chunks of "The AI SDK's chat route") ----

ROLES = ToolRoles(server=frozenset({"lookup", "guarded"}), turns=True)


def _map_with(chunks: UIChunks, *events: tuple[str, Any]) -> list[Any]:
    frames = StreamFrames("S")
    out: list[bytes] = []
    for name, data in events:
        frame = frames.message(data) if name == "message" else frames.event(name, data)
        chunks.frame(frame, out)
    return [json.loads(raw[6:]) if raw != b"data: [DONE]\n\n" else "[DONE]" for raw in out]


def test_tool_roles_come_from_the_tool_definitions() -> None:
    specs = tool_specs([
        {"name": "lookup", "input_schema": {"type": "object"},
         "handler": "tests.support.tool_handlers:lookup"},
        {"name": "guarded", "input_schema": {"type": "object"}, "needs_approval": True,
         "handler": "tests.support.tool_handlers:lookup"},
        {"name": "locate", "input_schema": {"type": "object"}},
    ])
    assert ToolRoles.of(specs) == ROLES
    assert ToolRoles.of(specs[:1]) == ToolRoles(server=frozenset({"lookup"}), turns=False)


def test_a_server_tool_streams_its_input_its_output_then_the_next_step() -> None:
    """The server runs the call and continues the reply in the same stream: the tool part
    is the server's (`providerExecuted`), and the continuation is the message's next step."""
    roles = ToolRoles(server=frozenset({"lookup"}))
    assert _map_with(
        UIChunks("S", roles), META, ("message", "Let me look."),
        ("tool_start", {"id": "toolu_1", "name": "lookup"}),
        ("tool_input", {"id": "toolu_1", "delta": '{"q": '}),
        ("tool_input", {"id": "toolu_1", "delta": '"life"}'}),
        ("tool_input", {"id": "toolu_9", "delta": "{}"}),  # no call of that id: skipped
        ("tool", {"id": "toolu_1", "name": "lookup", "input": {"q": "life"}}),
        ("tool_result", {"tool_use_id": "toolu_1", "name": "lookup", "content": "42"}),
        ("message", "It is 42."), ("usage", USAGE), ("done", "[DONE]"),
    ) == [
        *START,
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "Let me look."},
        {"type": "text-end", "id": "t1"},
        {"type": "tool-input-start", "toolCallId": "toolu_1", "toolName": "lookup",
         "providerExecuted": True},
        {"type": "tool-input-delta", "toolCallId": "toolu_1", "inputTextDelta": '{"q": '},
        {"type": "tool-input-delta", "toolCallId": "toolu_1", "inputTextDelta": '"life"}'},
        {"type": "tool-input-available", "toolCallId": "toolu_1", "toolName": "lookup",
         "input": {"q": "life"}, "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "toolu_1", "output": "42",
         "providerExecuted": True},
        {"type": "finish-step"}, {"type": "start-step"},
        {"type": "text-start", "id": "t8"},
        {"type": "text-delta", "id": "t8", "delta": "It is 42."},
        {"type": "text-end", "id": "t8"},
        *FINISH,
    ]


def test_a_failed_server_tool_is_an_output_error() -> None:
    got = _map_with(
        UIChunks("S", ROLES), META, ("tool", {"id": "toolu_1", "name": "lookup", "input": {}}),
        ("tool_result", {"tool_use_id": "toolu_1", "name": "lookup",
                         "content": [{"type": "text", "text": "The tool failed."}],
                         "is_error": True}))
    assert got[-1] == {"type": "tool-output-error", "toolCallId": "toolu_1",
                       "errorText": "The tool failed.", "providerExecuted": True}


def test_a_client_tool_turn_ends_the_reasoning_parts_with_their_signatures() -> None:
    """The reasoning parts stay open until the turn brings the signature and the redacted
    data; the client's call is not the server's, so `onToolCall` runs for it."""
    turn = {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I should ask.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Asking."},
        {"type": "tool_use", "id": "toolu_c", "name": "locate", "input": {}}]}
    assert _map_with(
        UIChunks("S", ROLES), META, ("thinking", "I should ask."),
        ("thinking_hidden", {"reason": "redacted"}), ("message", "Asking."),
        ("tool_start", {"id": "toolu_c", "name": "locate"}),
        ("tool", {"id": "toolu_c", "name": "locate", "input": {}}), ("turn", turn),
        ("usage", USAGE | {"stop_reason": "tool_use"}), ("done", "[DONE]"),
    ) == [
        *START,
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "I should ask."},
        {"type": "reasoning-start", "id": "r2",
         "providerMetadata": {"sseserver": {"thinkingHidden": "redacted"}}},
        {"type": "text-start", "id": "t3"},
        {"type": "text-delta", "id": "t3", "delta": "Asking."},
        {"type": "text-end", "id": "t3"},
        {"type": "tool-input-start", "toolCallId": "toolu_c", "toolName": "locate"},
        {"type": "tool-input-available", "toolCallId": "toolu_c", "toolName": "locate",
         "input": {}},
        {"type": "reasoning-end", "id": "r1",
         "providerMetadata": {"anthropic": {"signature": "sig-1"}}},
        {"type": "reasoning-end", "id": "r2", "providerMetadata": {
            "anthropic": {"redactedData": "opaque"}, "sseserver": {"thinkingHidden": "redacted"}}},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "tool-calls"}, "[DONE]",
    ]


def test_without_a_turn_the_held_reasoning_ends_with_its_step() -> None:
    assert _map_with(UIChunks("S", ROLES), META, ("thinking", "hm"), ("message", "Hi"),
                     ("usage", USAGE))[2:] == [
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "hm"},
        {"type": "text-start", "id": "t2"},
        {"type": "text-delta", "id": "t2", "delta": "Hi"},
        {"type": "text-end", "id": "t2"},
        {"type": "reasoning-end", "id": "r1"},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "stop"},
    ]


def test_thinking_blocks_that_do_not_pair_with_the_parts_sign_nothing() -> None:
    turn = {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "a", "signature": "s1"},
        {"type": "thinking", "thinking": "b", "signature": "s2"},
        {"type": "tool_use", "id": "toolu_c", "name": "locate", "input": {}}]}
    got = _map_with(UIChunks("S", ROLES), META, ("thinking", "a"), ("thinking", "b"),
                    ("tool", {"id": "toolu_c", "name": "locate", "input": {}}), ("turn", turn))
    assert got[-1] == {"type": "reasoning-end", "id": "r1"}


def test_a_call_that_needs_approval_asks_for_it() -> None:
    turn = {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_g", "name": "guarded", "input": {"q": "x"}}],
        "needs_approval": ["toolu_g"]}
    assert _map_with(
        UIChunks("S", ROLES), META,
        ("tool", {"id": "toolu_g", "name": "guarded", "input": {"q": "x"}}), ("turn", turn),
        ("usage", USAGE | {"stop_reason": "tool_use"}))[2:] == [
        {"type": "tool-input-available", "toolCallId": "toolu_g", "toolName": "guarded",
         "input": {"q": "x"}, "providerExecuted": True},
        {"type": "tool-approval-request", "approvalId": "toolu_g", "toolCallId": "toolu_g"},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "tool-calls"},
    ]


def test_a_continuation_keeps_the_message_and_answers_its_calls_first() -> None:
    """After the user's decisions the reply continues the client's message: its id, the
    outcome of each call there (a denied one as denied), then the continuation's step."""
    denied = {"tool_use_id": "toolu_d", "name": "guarded", "is_error": True,
              "content": "The user denied this tool call. Reason: no"}
    ran = {"tool_use_id": "toolu_g", "name": "guarded", "content": "done"}
    assert _map_with(UIChunks("A1", ROLES, continuing=True), META, ("tool_result", denied),
                     ("tool_result", ran), ("message", "OK."), ("usage", USAGE)) == [
        {"type": "start", "messageId": "A1"}, {"type": "start-step"},
        {"type": "tool-output-denied", "toolCallId": "toolu_d"},
        {"type": "tool-output-available", "toolCallId": "toolu_g", "output": "done",
         "providerExecuted": True},
        {"type": "text-start", "id": "t3"},
        {"type": "text-delta", "id": "t3", "delta": "OK."},
        {"type": "text-end", "id": "t3"},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "stop"},
    ]
    # A reconnect has no message to continue: results of calls it never saw are left out.
    assert _map_with(UIChunks("S", ROLES), META, ("tool_result", ran))[2:] == []


# ---- Claude's server tools, MCP, compaction, containers and the blocks without a part ----
# (docs/protocol.md, "The AI SDK's chat route"; the events' shapes are "Server tools")

FILES = [{"file_id": "file_01", "name": "plot.png"}, {"file_id": "file_02", "name": None}]


def _tool_parts(*events: tuple[str, Any]) -> list[Any]:
    """The chunks of a reply made of these events, after its start."""
    return _map(META, *events)[2:]


def test_a_web_fetch_is_a_provider_run_part_and_a_source() -> None:
    call = {"id": "srvtoolu_f", "name": "web_fetch", "input": {"url": "https://a.test/p"}}
    fetched = {"tool_use_id": "srvtoolu_f", "name": "web_fetch", "url": "https://a.test/p",
               "title": "Page A", "retrieved_at": "2026-12-06T12:00:00Z"}
    assert _tool_parts(("tool", call), ("tool_result", fetched), ("message", "Read.")) == [
        {"type": "tool-input-available", "toolCallId": "srvtoolu_f", "toolName": "web_fetch",
         "input": {"url": "https://a.test/p"}, "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_f", "output": {
            "type": "web_fetch_result", "url": "https://a.test/p",
            "retrievedAt": "2026-12-06T12:00:00Z",
            "content": {"type": "document", "title": "Page A"}}, "providerExecuted": True},
        {"type": "source-url", "sourceId": "https://a.test/p", "url": "https://a.test/p",
         "title": "Page A"},
        # The fetch ends no step: the API ran it within its reply.
        {"type": "text-start", "id": "t3"},
        {"type": "text-delta", "id": "t3", "delta": "Read."},
    ]


def test_a_fetched_page_cited_later_is_one_source_and_a_bad_url_none() -> None:
    call = {"id": "srvtoolu_f", "name": "web_fetch", "input": {"url": "https://a.test/"}}
    fetched = {"tool_use_id": "srvtoolu_f", "name": "web_fetch", "url": "https://a.test/",
               "title": None, "retrieved_at": None}
    cite = {"url": "https://a.test/", "title": None, "cited_text": "c"}
    got = _tool_parts(("tool", call), ("tool_result", fetched), ("message", "x"),
                      ("citation", cite), ("usage", USAGE))
    assert [c for c in got if c["type"] == "source-url"] == [
        {"type": "source-url", "sourceId": "https://a.test/", "url": "https://a.test/"}]
    script = fetched | {"url": "javascript:alert(1)"}
    got = _tool_parts(("tool", call), ("tool_result", script))
    assert got[-1]["output"]["url"] is None
    assert not [c for c in got if c["type"] == "source-url"]


def test_failed_server_tools_are_output_errors_with_their_code() -> None:
    call = {"id": "srvtoolu_f", "name": "web_fetch", "input": {"url": "https://a.test/"}}
    failed = {"tool_use_id": "srvtoolu_f", "name": "web_fetch",
              "error": {"code": "url_not_accessible"}}
    with_message = failed | {"error": {"code": "unavailable", "message": "Try later."}}
    assert _tool_parts(("tool", call), ("tool_result", failed))[-1] == {
        "type": "tool-output-error", "toolCallId": "srvtoolu_f",
        "errorText": "url_not_accessible", "providerExecuted": True}
    got = _tool_parts(("tool", call), ("tool_result", with_message))
    assert got[-1]["errorText"] == "unavailable: Try later."
    assert not [c for c in got if c["type"] == "source-url"]


def test_code_execution_calls_are_parts_of_code_execution_as_ai_sdk_anthropic_names_them(
) -> None:
    bash = {"id": "srvtoolu_b", "name": "bash_code_execution", "input": {"command": "ls"}}
    ran = {"tool_use_id": "srvtoolu_b", "name": "bash_code_execution", "command": "ls",
           "stdout": "a.txt\n", "stderr": "", "return_code": 0, "files": FILES}
    edit = {"id": "srvtoolu_e", "name": "text_editor_code_execution",
            "input": {"command": "view", "path": "/tmp/a.txt"}}
    viewed = {"tool_use_id": "srvtoolu_e", "name": "text_editor_code_execution",
              "command": "view", "path": "/tmp/a.txt", "result": {
                  "type": "view", "content": "hello", "file_type": "text", "num_lines": 1,
                  "start_line": 1, "total_lines": 1}, "truncated": True}
    code = {"id": "srvtoolu_c", "name": "code_execution", "input": {"code": "print(1)"}}
    printed = {"tool_use_id": "srvtoolu_c", "name": "code_execution", "stdout": "1\n",
               "stderr": "", "return_code": 0, "files": []}
    assert _tool_parts(("tool", bash), ("tool_result", ran), ("tool", edit),
                       ("tool_result", viewed), ("tool", code), ("tool_result", printed)) == [
        {"type": "tool-input-available", "toolCallId": "srvtoolu_b",
         "toolName": "code_execution", "input": {"type": "bash_code_execution",
                                                 "command": "ls"}, "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_b", "output": {
            "type": "bash_code_execution_result", "stdout": "a.txt\n", "stderr": "",
            "return_code": 0, "content": [
                {"type": "bash_code_execution_output", "file_id": "file_01",
                 "name": "plot.png"},
                {"type": "bash_code_execution_output", "file_id": "file_02", "name": None}]},
         "providerExecuted": True},
        {"type": "tool-input-available", "toolCallId": "srvtoolu_e",
         "toolName": "code_execution", "input": {
             "type": "text_editor_code_execution", "command": "view", "path": "/tmp/a.txt"},
         "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_e", "output": {
            "type": "text_editor_code_execution_view_result", "content": "hello",
            "file_type": "text", "num_lines": 1, "start_line": 1, "total_lines": 1,
            "truncated": True}, "providerExecuted": True},
        {"type": "tool-input-available", "toolCallId": "srvtoolu_c",
         "toolName": "code_execution", "input": {"type": "programmatic-tool-call",
                                                 "code": "print(1)"},
         "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_c", "output": {
            "type": "code_execution_result", "stdout": "1\n", "stderr": "", "return_code": 0,
            "content": []}, "providerExecuted": True},
    ]


def test_an_encrypted_run_has_no_stdout_and_an_edit_its_result_s_fields() -> None:
    code = {"id": "srvtoolu_c", "name": "code_execution", "input": {"code": "x"}}
    encrypted = {"tool_use_id": "srvtoolu_c", "name": "code_execution", "stdout": None,
                 "stderr": "warn", "return_code": 1, "files": FILES[:1]}
    assert _tool_parts(("tool", code), ("tool_result", encrypted))[-1]["output"] == {
        "type": "encrypted_code_execution_result", "stderr": "warn", "return_code": 1,
        "content": [{"type": "code_execution_output", "file_id": "file_01",
                     "name": "plot.png"}]}
    edit = {"id": "srvtoolu_e", "name": "text_editor_code_execution",
            "input": {"command": "str_replace", "path": "/a", "old_str": "x", "new_str": "y"}}
    replaced = {"tool_use_id": "srvtoolu_e", "name": "text_editor_code_execution",
                "command": "str_replace", "path": "/a", "result": {
                    "type": "str_replace", "lines": ["-x", "+y"], "new_lines": 1,
                    "new_start": 1, "old_lines": 1, "old_start": 1}}
    assert _tool_parts(("tool", edit), ("tool_result", replaced))[-1]["output"] == {
        "type": "text_editor_code_execution_str_replace_result", "lines": ["-x", "+y"],
        "new_lines": 1, "new_start": 1, "old_lines": 1, "old_start": 1}


def test_a_tool_search_s_result_is_its_tool_references() -> None:
    call = {"id": "srvtoolu_s", "name": "tool_search_tool_regex", "input": {"pattern": "wea"}}
    found = {"tool_use_id": "srvtoolu_s", "name": "tool_search_tool_regex",
             "tools": ["weather", "wear"]}
    assert _tool_parts(("tool", call), ("tool_result", found)) == [
        {"type": "tool-input-available", "toolCallId": "srvtoolu_s",
         "toolName": "tool_search_tool_regex", "input": {"pattern": "wea"},
         "providerExecuted": True},
        {"type": "tool-output-available", "toolCallId": "srvtoolu_s", "output": [
            {"type": "tool_reference", "toolName": "weather"},
            {"type": "tool_reference", "toolName": "wear"}], "providerExecuted": True},
    ]


def test_an_mcp_call_is_a_dynamic_part_named_after_the_mcp_tool() -> None:
    call = {"id": "mcptoolu_1", "name": "get_issue", "input": {"n": 7},
            "server_name": "tracker"}
    answered = {"tool_use_id": "mcptoolu_1", "name": "get_issue", "server_name": "tracker",
                "is_error": False, "content": "Ticket 7: open"}
    metadata = {"anthropic": {"type": "mcp-tool-use", "serverName": "tracker"}}
    assert _tool_parts(("tool", call), ("tool_result", answered), ("usage", USAGE))[:2] == [
        {"type": "tool-input-available", "toolCallId": "mcptoolu_1", "toolName": "get_issue",
         "input": {"n": 7}, "providerExecuted": True, "providerMetadata": metadata,
         "dynamic": True},
        {"type": "tool-output-available", "toolCallId": "mcptoolu_1",
         "output": [{"type": "text", "text": "Ticket 7: open"}], "providerExecuted": True,
         "providerMetadata": metadata, "dynamic": True},
    ]
    failed = answered | {"is_error": True, "content": "No such issue.", "truncated": True}
    assert _tool_parts(("tool", call), ("tool_result", failed))[-1] == {
        "type": "tool-output-error", "toolCallId": "mcptoolu_1", "errorText": "No such issue.",
        "providerExecuted": True, "dynamic": True,
        "providerMetadata": metadata | {"sseserver": {"truncated": True}}}


def test_compaction_files_and_unknown_blocks_are_data_parts() -> None:
    block = {"type": "compaction", "content": "Summary.", "encrypted_content": "E",
             "signature": "S"}
    unknown = {"kind": "block", "type": "future_block", "data": {"type": "future_block",
                                                                "x": 1}}
    delta = {"kind": "delta", "type": "future_delta", "data": {"type": "future_delta"}}
    assert _tool_parts(("compaction", {"content": "Summary.", "block": block}),
                       ("message", "Hi"), ("block", delta), ("message", " there"),
                       ("block", unknown), ("file", {"file_id": "file_9"}),
                       ("usage", USAGE)) == [
        {"type": "data-compaction", "id": "c1", "data": {"content": "Summary.",
                                                        "block": block}},
        {"type": "text-start", "id": "t2"},
        {"type": "text-delta", "id": "t2", "delta": "Hi"},
        # A delta the server does not know leaves its text part open.
        {"type": "data-unsupported", "id": "u3", "data": delta},
        {"type": "text-delta", "id": "t2", "delta": " there"},
        {"type": "text-end", "id": "t2"},
        {"type": "data-unsupported", "id": "u5", "data": unknown},
        {"type": "data-file", "id": "f6", "data": {"fileId": "file_9"}},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "stop"},
    ]
    failed = {"content": None, "block": {"type": "compaction", "content": None}}
    assert _tool_parts(("compaction", failed))[0]["data"] == failed


def test_the_container_is_the_finish_s_message_metadata() -> None:
    container = {"id": "container_011", "expires_at": "2026-12-06T13:00:00Z"}
    assert _tool_parts(("message", "x"), ("container", container), ("usage", USAGE),
                       ("done", "[DONE]"))[-3:] == [
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop", "messageMetadata": {"container": {
            "id": "container_011", "expiresAt": "2026-12-06T13:00:00Z"}}},
        "[DONE]"]
    # A cancelled reply's abort carries none (the AI SDK reads metadata on finish only).
    got = _tool_parts(("container", container), ("usage", USAGE | {"stop_reason": "cancelled"}))
    assert got[-1] == {"type": "abort", "reason": "cancelled"}


def test_compaction_and_a_full_context_finish_as_ai_sdk_anthropic_maps_them() -> None:
    for stop_reason, finish_reason in (("compaction", "other"),
                                       ("model_context_window_exceeded", "length"),
                                       ("pause_turn", "stop")):
        assert _map(META, ("usage", USAGE | {"stop_reason": stop_reason}))[-1] == {
            "type": "finish", "finishReason": finish_reason}


def test_a_result_that_waited_for_its_files_leaves_the_text_part_open() -> None:
    """A run's result comes once its files have names, while the text after the call goes
    on: the output fills the call's part, and the text stays one part."""
    bash = {"id": "srvtoolu_b", "name": "bash_code_execution", "input": {"command": "ls"}}
    ran = {"tool_use_id": "srvtoolu_b", "name": "bash_code_execution", "command": "ls",
           "stdout": "", "stderr": "", "return_code": 0, "files": FILES[:1]}
    got = _tool_parts(("tool", bash), ("message", "Made "), ("tool_result", ran),
                      ("message", "a plot."), ("usage", USAGE))
    assert [c["type"] for c in got] == [
        "tool-input-available", "text-start", "text-delta", "tool-output-available",
        "text-delta", "text-end", "finish-step", "finish"]
    assert {c.get("id") for c in got if c["type"].startswith("text-")} == {"t2"}
