"""Untrusted input to a GenerationRequest (validation.py), one row per case: each field's
accepted forms, and each refusal with the exact status and message the client gets
(docs/protocol.md, "Errors"). Over HTTP, tests/test_bad_input_functional.py checks that a
refusal changes nothing; tests/test_fuzz_functional.py throws everything else at it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sseserver.config import Settings
from sseserver.errors import Refused
from sseserver.providers import ChatMessage, GenerationRequest
from sseserver.providers.base import Role, Thinking
from sseserver.validation import request_from_json, request_from_query, resume_point

SETTINGS = dataclasses.replace(
    Settings(), max_tokens=1000, max_message_chars=100,
    models=("claude-sonnet-5-5", "claude-haiku-5-5"),
)
DEFAULT_MODEL = "claude-sonnet-5-5"
ALLOWED = "allowed: claude-sonnet-5-5, claude-haiku-5-5."
MAX_TOKENS = "max_tokens must be an integer from 1 to 1000."
LONG = "x" * 101


def _request(*turns: str, model: str = DEFAULT_MODEL, max_tokens: int = 1000,
             system: str | None = None, thinking: Thinking = "adaptive",
             web_search: int = 0) -> GenerationRequest:
    """What a request asks for; a request that does not say thinks adaptively."""
    roles: tuple[Role, Role] = ("user", "assistant")
    return GenerationRequest(
        messages=tuple(ChatMessage(roles[n % 2], text) for n, text in enumerate(turns)),
        model=model, max_tokens=max_tokens, system=system, thinking=thinking,
        web_search=web_search,
    )


def _body(**fields: Any) -> bytes:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return json.dumps(fields).encode()


def _turns(*turns: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": role, "content": content} for role, content in turns]


# ---- GET /api/sse: the query string ----


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"message": "hi"}, _request("hi"), id="message-only"),
        pytest.param({"message": "  hi \n"}, _request("  hi \n"), id="message-kept-as-sent"),
        pytest.param({"message": "x" * 100}, _request("x" * 100), id="message-at-the-limit"),
        pytest.param({"message": "hi", "model": "claude-haiku-5-5"},
                     _request("hi", model="claude-haiku-5-5"), id="model-listed"),
        pytest.param({"message": "hi", "model": DEFAULT_MODEL}, _request("hi"),
                     id="model-default"),
        pytest.param({"message": "hi", "max_tokens": "1"}, _request("hi", max_tokens=1),
                     id="max-tokens-1"),
        pytest.param({"message": "hi", "max_tokens": "1000"}, _request("hi"),
                     id="max-tokens-at-the-limit"),
        pytest.param({"message": "hi", "max_tokens": "007"}, _request("hi", max_tokens=7),
                     id="max-tokens-leading-zeros"),
        pytest.param({"message": "hi", "system": "Be brief."},
                     _request("hi", system="Be brief."), id="system"),
        pytest.param({"message": "hi", "system": ""}, _request("hi"), id="system-empty-is-none"),
        pytest.param({"message": "hi", "system": "s" * 100}, _request("hi", system="s" * 100),
                     id="system-at-the-limit"),
    ],
)
def test_query_accepted(query: dict[str, str], expected: GenerationRequest) -> None:
    assert request_from_query(query, SETTINGS) == expected


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        pytest.param({}, 400, "The message query parameter is required.", id="no-message"),
        pytest.param({"model": DEFAULT_MODEL}, 400, "The message query parameter is required.",
                     id="no-message-but-others"),
        pytest.param({"message": ""}, 400, "message must not be empty.", id="message-empty"),
        pytest.param({"message": " \n\t "}, 400, "message must not be empty.",
                     id="message-blank"),
        pytest.param({"message": LONG}, 413, "message is longer than 100 characters.",
                     id="message-too-long"),
        pytest.param({"message": "hi", "model": "gpt-4"}, 400,
                     f"Unknown model 'gpt-4'; {ALLOWED}", id="model-unknown"),
        pytest.param({"message": "hi", "model": ""}, 400, f"Unknown model ''; {ALLOWED}",
                     id="model-empty"),
        pytest.param({"message": "hi", "model": "m" * 300}, 400,
                     f"Unknown model '{'m' * 100}'; {ALLOWED}", id="model-echo-cut-at-100"),
        pytest.param({"message": "hi", "max_tokens": "0"}, 400, MAX_TOKENS, id="max-tokens-0"),
        pytest.param({"message": "hi", "max_tokens": "1001"}, 400, MAX_TOKENS,
                     id="max-tokens-over"),
        pytest.param({"message": "hi", "max_tokens": "-1"}, 400, MAX_TOKENS,
                     id="max-tokens-negative"),
        pytest.param({"message": "hi", "max_tokens": "1.5"}, 400, MAX_TOKENS,
                     id="max-tokens-decimal"),
        pytest.param({"message": "hi", "max_tokens": "ten"}, 400, MAX_TOKENS,
                     id="max-tokens-word"),
        pytest.param({"message": "hi", "max_tokens": ""}, 400, MAX_TOKENS,
                     id="max-tokens-empty"),
        pytest.param({"message": "hi", "max_tokens": "١٢"}, 400, MAX_TOKENS,
                     id="max-tokens-non-ascii-digits"),
        pytest.param({"message": "hi", "max_tokens": "1" + "0" * 9}, 400, MAX_TOKENS,
                     id="max-tokens-ten-digits"),
        pytest.param({"message": "hi", "max_tokens": "9" * 5000}, 400, MAX_TOKENS,
                     id="max-tokens-too-many-digits-for-int"),
        pytest.param({"message": "hi", "system": LONG}, 413,
                     "system is longer than 100 characters.", id="system-too-long"),
    ],
)
def test_query_refused(query: dict[str, str], status: int, message: str) -> None:
    with pytest.raises(Refused) as refused:
        request_from_query(query, SETTINGS)
    assert (refused.value.status, refused.value.message) == (status, message)


# ---- POST /api/streams: the JSON body ----


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(_body(), _request("hi"), id="messages-only"),
        pytest.param(
            _body(messages=_turns(("user", "a"), ("assistant", "b"), ("user", "c"))),
            _request("a", "b", "c"), id="turns-alternate",
        ),
        pytest.param(_body(messages=_turns(("user", "x" * 100))), _request("x" * 100),
                     id="content-at-the-limit"),
        pytest.param(_body(model="claude-haiku-5-5"), _request("hi", model="claude-haiku-5-5"),
                     id="model-listed"),
        pytest.param(_body(model=None), _request("hi"), id="model-null-is-default"),
        pytest.param(_body(max_tokens=1), _request("hi", max_tokens=1), id="max-tokens-1"),
        pytest.param(_body(max_tokens=1000), _request("hi"), id="max-tokens-at-the-limit"),
        pytest.param(_body(max_tokens=None), _request("hi"), id="max-tokens-null-is-default"),
        pytest.param(_body(system="Be brief."), _request("hi", system="Be brief."),
                     id="system"),
        pytest.param(_body(system=""), _request("hi"), id="system-empty-is-none"),
        pytest.param(_body(system=None), _request("hi"), id="system-null-is-none"),
        pytest.param('{"messages":[{"role":"user","content":"é 中"}]}'.encode(),
                     _request("é 中"), id="utf-8"),
    ],
)
def test_body_accepted(body: bytes, expected: GenerationRequest) -> None:
    assert request_from_json(body, SETTINGS) == expected


ROLES = "roles alternate, starting with 'user'."
EXACTLY = "must be an object with exactly role and content."


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(b"", 400, "The body must be JSON in UTF-8.", id="empty"),
        pytest.param(b"{messages:", 400, "The body must be JSON in UTF-8.", id="not-json"),
        pytest.param(b'{"messages": "\xff"}', 400, "The body must be JSON in UTF-8.",
                     id="not-utf-8"),
        pytest.param(b"\xef\xbb\xbf" + _body(), 400, "The body must be JSON in UTF-8.",
                     id="byte-order-mark"),
        pytest.param(b"[]", 400, "The body must be a JSON object.", id="array"),
        pytest.param(b'"hi"', 400, "The body must be a JSON object.", id="string"),
        pytest.param(b"null", 400, "The body must be a JSON object.", id="null"),
        pytest.param(_body(stream=True, temperature=1), 400,
                     "Unknown field(s): stream, temperature.", id="unknown-fields-sorted"),
        pytest.param(b"{}", 400, "messages must be a non-empty list.", id="messages-missing"),
        pytest.param(_body(messages=[]), 400, "messages must be a non-empty list.",
                     id="messages-empty"),
        pytest.param(_body(messages="hi"), 400, "messages must be a non-empty list.",
                     id="messages-string"),
        pytest.param(_body(messages=["hi"]), 400, f"messages[0] {EXACTLY}",
                     id="message-not-object"),
        pytest.param(_body(messages=[{"role": "user"}]), 400, f"messages[0] {EXACTLY}",
                     id="message-without-content"),
        pytest.param(_body(messages=[{"role": "user", "content": "hi", "name": "x"}]), 400,
                     f"messages[0] {EXACTLY}", id="message-extra-key"),
        pytest.param(_body(messages=_turns(("assistant", "hi"))), 400,
                     f"messages[0].role must be 'user': {ROLES}", id="first-not-user"),
        pytest.param(_body(messages=_turns(("user", "a"), ("user", "b"))), 400,
                     f"messages[1].role must be 'assistant': {ROLES}", id="roles-repeat"),
        pytest.param(_body(messages=_turns(("system", "a"))), 400,
                     f"messages[0].role must be 'user': {ROLES}", id="role-unknown"),
        pytest.param(_body(messages=_turns(("user", 5))), 400,
                     "messages[0].content must be a string or a list of content blocks.",
                     id="content-number"),
        pytest.param(_body(messages=_turns(("user", []))), 400,
                     "messages[0].content must not be an empty list.", id="blocks-empty"),
        pytest.param(_body(messages=_turns(("user", ["hi"]))), 400,
                     "messages[0].content[0] must be an object with a type.", id="block-string"),
        pytest.param(_body(messages=_turns(("user", [{"type": "thinking"}]))), 400,
                     "messages[0].content[0].type 'thinking' is not allowed in a user message; "
                     "allowed: text, image, document, tool_result, tool_approval.",
                     id="block-type-for-role"),
        pytest.param(_body(messages=_turns(("user", [{"type": "text"}]))), 400,
                     "messages[0].content[0] (text) lacks text.", id="block-field-missing"),
        pytest.param(_body(messages=_turns(("user", [{"type": "text", "text": "a",
                                                      "cache_control": {}}]))), 400,
                     "messages[0].content[0] (text) has unknown 'cache_control'.",
                     id="block-field-unknown"),
        pytest.param(_body(messages=_turns(("user", [{"type": "text", "text": 5}]))), 400,
                     "messages[0].content[0].text must be a string.", id="block-text-number"),
        pytest.param(_body(messages=_turns(("user", [{"type": "text", "text": LONG}]))), 413,
                     "messages[0].content[0].text is longer than 100 characters.",
                     id="block-text-too-long"),
        pytest.param(_body(messages=_turns(("user", "a"), ("assistant", [
            {"type": "thinking", "thinking": "x"}]))), 400,
                     "messages[1].content[0] (thinking) lacks signature.",
                     id="thinking-without-signature"),
        pytest.param(_body(messages=_turns(("user", "a"), ("assistant", [
            {"type": "tool_use", "id": "bad id!", "name": "x", "input": {}}]))), 400,
                     "messages[1].content[0].id must be a tool call id (letters, digits, _ and -).",
                     id="tool-use-bad-id"),
        pytest.param(_body(messages=_turns(("user", [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]))), 400,
                     "messages[0].content has a tool_result for 'toolu_1', which is not a "
                     "tool call.", id="tool-result-first"),
        pytest.param(_body(messages=_turns(("user", "a"), ("assistant", " "))), 400,
                     "messages[1].content must not be empty.", id="content-blank"),
        pytest.param(_body(messages=_turns(("user", LONG))), 413,
                     "messages[0].content is longer than 100 characters.", id="content-too-long"),
        pytest.param(_body(model="gpt-4"), 400, f"Unknown model 'gpt-4'; {ALLOWED}",
                     id="model-unknown"),
        pytest.param(_body(model=5), 400, f"Unknown model '5'; {ALLOWED}", id="model-number"),
        pytest.param(_body(max_tokens=0), 400, MAX_TOKENS, id="max-tokens-0"),
        pytest.param(_body(max_tokens=1001), 400, MAX_TOKENS, id="max-tokens-over"),
        pytest.param(_body(max_tokens=True), 400, MAX_TOKENS, id="max-tokens-bool"),
        pytest.param(_body(max_tokens=10.0), 400, MAX_TOKENS, id="max-tokens-float"),
        pytest.param(_body(max_tokens="10"), 400, MAX_TOKENS, id="max-tokens-string"),
        pytest.param(_body(system=["Be brief."]), 400, "system must be a string.",
                     id="system-list"),
        pytest.param(_body(system=LONG), 413, "system is longer than 100 characters.",
                     id="system-too-long"),
    ],
)
def test_body_refused(body: bytes, status: int, message: str) -> None:
    with pytest.raises(Refused) as refused:
        request_from_json(body, SETTINGS)
    assert (refused.value.status, refused.value.message) == (status, message)


# ---- thinking and web_search, on both routes (refusals: test_bad_options_functional.py) ----

CLAUDE = dataclasses.replace(SETTINGS, max_tokens=4096, max_thinking_tokens=2048, web_search=3)


@pytest.mark.parametrize(
    ("options", "settings", "thinking", "web_search"),
    [
        pytest.param({}, CLAUDE, "adaptive", 0, id="defaults"),
        pytest.param({}, dataclasses.replace(CLAUDE, max_thinking_tokens=0), "off", 0,
                     id="default-where-thinking-is-off"),
        pytest.param({"thinking": "off"}, CLAUDE, "off", 0, id="thinking-off"),
        pytest.param({"thinking": "adaptive"}, CLAUDE, "adaptive", 0, id="thinking-adaptive"),
        pytest.param({"thinking": 1024}, CLAUDE, 1024, 0, id="budget-least"),
        pytest.param({"thinking": 2048}, CLAUDE, 2048, 0, id="budget-at-the-bound"),
        pytest.param({"web_search": "off"}, CLAUDE, "adaptive", 0, id="search-off"),
        pytest.param({"web_search": "on"}, CLAUDE, "adaptive", 3, id="search-on-is-the-bound"),
        pytest.param({"web_search": 1}, CLAUDE, "adaptive", 1, id="searches-1"),
        pytest.param({"web_search": "off"}, dataclasses.replace(CLAUDE, web_search=0),
                     "adaptive", 0, id="search-off-where-it-is-off"),
    ],
)
def test_thinking_and_web_search_accepted(
    options: dict[str, Any], settings: Settings, thinking: Thinking, web_search: int
) -> None:
    expected = _request("hi", max_tokens=4096, thinking=thinking, web_search=web_search)
    query = {"message": "hi", **{k: str(v) for k, v in options.items()}}
    assert request_from_query(query, settings) == expected
    assert request_from_json(_body(**options), settings) == expected
    nulls = {key: None for key in ("thinking", "web_search") if key not in options}
    assert request_from_json(_body(**options, **nulls), settings) == expected


# ---- Last-Event-ID: where a reconnect resumes ----


@pytest.mark.parametrize(
    ("header", "query", "expected"),
    [
        pytest.param(None, None, None, id="neither"),
        pytest.param("", None, None, id="empty-header"),
        pytest.param(None, "", None, id="empty-query"),
        pytest.param("abc:4", None, ("abc", 5), id="header"),
        pytest.param(None, "abc:4", ("abc", 5), id="query"),
        pytest.param("abc:0", None, ("abc", 1), id="after-the-first"),
        pytest.param("abc:4", "xyz:9", ("abc", 5), id="header-wins"),
        pytest.param("", "abc:4", None, id="empty-header-hides-the-query"),
    ],
)
def test_resume_point_accepted(
    header: str | None, query: str | None, expected: tuple[str, int] | None
) -> None:
    assert resume_point(header, query) == expected


@pytest.mark.parametrize(
    ("header", "query"),
    [
        pytest.param("abc", None, id="no-index"),
        pytest.param("abc:-1", None, id="negative"),
        pytest.param("abc:1e2", None, id="not-digits"),
        pytest.param("a b:1", None, id="bad-stream"),
        pytest.param(None, ":1", id="no-stream-in-query"),
        pytest.param("abc:" + "9" * 10, None, id="index-too-long"),
    ],
)
def test_resume_point_refused(header: str | None, query: str | None) -> None:
    with pytest.raises(Refused) as refused:
        resume_point(header, query)
    assert refused.value.status == 400
    assert refused.value.message == "Last-Event-ID is not an event id of this server."
