"""The Messages API body and betas a GenerationRequest becomes (anthropic_request.py), and
a paused turn's continuation; each checked against the fake's own checks of the API's
rules too (fake_models.validate_features), so a shape the API refuses cannot pass here."""

from __future__ import annotations

from typing import Any

import pytest

from sseserver.providers import ChatMessage, GenerationRequest
from sseserver.providers.anthropic_request import (
    continuation_params,
    may_continue,
    request_betas,
    request_params,
    tool_uses,
)

from .support.fake_models import validate_features

TOOL = {"name": "lookup", "description": "d", "input_schema": {"type": "object"}}
MCP = ({"type": "url", "name": "docs", "url": "https://m.example", "authorization_token": "t"},)


def _request(**fields: Any) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", "hi"),), "m", 4000, **fields)


def _accepted(request: GenerationRequest) -> dict[str, Any]:
    params = request_params(request, None)
    headers = {"anthropic-beta": ",".join(request_betas(request))}
    assert validate_features(params, headers, {}) is None
    return params


def test_a_plain_request_has_none_of_the_new_parameters() -> None:
    params = _accepted(_request())
    assert set(params) == {"model", "max_tokens", "messages", "thinking"}
    assert request_betas(_request()) == ()


def test_every_feature_at_once() -> None:
    request = _request(
        web_search=2, web_fetch=3, code_execution=True, tool_search=True, tools=(TOOL,),
        container="container_1", output_config={"effort": "low"}, mcp_servers=MCP,
        compaction=True,
    )
    params = _accepted(request)
    assert params["tools"] == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 3},
        {"type": "code_execution_20250825", "name": "code_execution"},
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        TOOL | {"defer_loading": True},
        {"type": "mcp_toolset", "mcp_server_name": "docs"},
    ]
    assert params["mcp_servers"] == list(MCP)
    assert params["context_management"] == {"edits": [{"type": "compact_20260112"}]}
    assert (params["output_config"], params["container"]) == ({"effort": "low"}, "container_1")
    assert request_betas(request) == ("mcp-client-2025-11-20", "compact-2026-01-12")
    assert "defer_loading" not in TOOL  # the operator's definition is left as it is


@pytest.mark.parametrize(("fields", "headers", "problem"), [
    ({"mcp_servers": MCP}, {}, "MCP needs the anthropic-beta header"),
    ({"compaction": True}, {}, "compaction needs the anthropic-beta header"),
])
def test_the_fake_refuses_a_feature_without_its_beta(
    fields: dict[str, Any], headers: dict[str, str], problem: str
) -> None:
    found = validate_features(request_params(_request(**fields), None), headers, {})
    assert found is not None
    assert problem in found


def test_the_fake_refuses_what_the_api_refuses() -> None:
    base = request_params(_request(tools=(TOOL,)), None)
    deferred = base | {"tools": [TOOL | {"defer_loading": True}]}
    assert "defer_loading is only valid with a tool search tool" in str(
        validate_features(deferred, {}, {}))
    lonely = base | {"mcp_servers": list(MCP)}
    assert "must be referenced by exactly one mcp_toolset" in str(
        validate_features(lonely, {"anthropic-beta": "mcp-client-2025-11-20"}, {}))
    assert "container: Input should be a valid string" in str(
        validate_features(base | {"container": 7}, {}, {}))
    assert "output_config.format" in str(validate_features(
        base | {"output_config": {"format": {"type": "json"}}}, {}, {}))


def test_may_continue_while_every_counted_tool_has_uses_left() -> None:
    assert not may_continue(_request(), 0, 0)
    assert not may_continue(_request(tools=(TOOL,)), 0, 0)  # only server tools pause
    assert may_continue(_request(web_search=2), 1, 0)
    assert not may_continue(_request(web_search=2), 2, 0)
    assert may_continue(_request(web_fetch=1), 0, 0)
    assert not may_continue(_request(web_fetch=1, web_search=3), 0, 1)
    for on in ({"code_execution": True}, {"tool_search": True}, {"mcp_servers": MCP}):
        assert may_continue(_request(**on), 0, 0)


def test_a_continuation_sends_the_reply_so_far_and_what_is_left() -> None:
    request = _request(web_search=3, web_fetch=2, code_execution=True, container="c1")
    params = request_params(request, {"type": "ephemeral", "ttl": "5m"})
    kept: list[dict[str, Any]] = [
        {"type": "server_tool_use", "id": "s1", "name": "web_fetch", "input": {}},
        {"type": "server_tool_use", "id": "s2", "name": "web_search", "input": {}},
        {"type": "text", "text": "so far"},
    ]
    assert (tool_uses(kept, "web_fetch"), tool_uses(kept, "web_search")) == (1, 1)
    following = continuation_params(params, request, kept, 1, 1, (3000, 2048))
    assert following["messages"] == [{"role": "user", "content": "hi"},
                                     {"role": "assistant", "content": kept}]
    assert following["tools"][:2] == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 1},
    ]
    assert (following["max_tokens"], following["thinking"]) == (
        3000, {"type": "enabled", "budget_tokens": 2048, "display": "summarized"})
    assert (following["container"], following["cache_control"]) == (
        "c1", {"type": "ephemeral", "ttl": "5m"})
