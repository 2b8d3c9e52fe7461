"""A request's server-tool and output options (request_options.py) on both native routes:
each field's accepted forms as the GenerationRequest fields they become, and each refusal
with its exact message (over HTTP, with nothing started: test_server_options_functional.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sseserver.config import Settings
from sseserver.errors import Refused
from sseserver.providers import GenerationRequest
from sseserver.server_tools_config import McpServer, OutputSchema
from sseserver.validation import request_from_json, request_from_query

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
ON = dataclasses.replace(
    Settings(), web_search=3, web_fetch=2, code_execution=True, tool_search=True,
    output_schemas=(OutputSchema("answer", SCHEMA),),
)
OFF = Settings()
TOKEN = "mcp-secret-token-0123456789"


def _json(settings: Settings, **fields: Any) -> GenerationRequest:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    return request_from_json(json.dumps(body).encode(), settings)


def _query(settings: Settings, **fields: Any) -> GenerationRequest:
    return request_from_query({"message": "hi", **{k: str(v) for k, v in fields.items()}},
                              settings)


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {}),
    ({"web_fetch": "off"}, {}),
    ({"web_fetch": "on"}, {"web_fetch": 2}),
    ({"web_fetch": 1}, {"web_fetch": 1}),
    ({"web_search": 2, "web_fetch": 2}, {"web_search": 2, "web_fetch": 2}),
    ({"code_execution": "on"}, {"code_execution": True}),
    ({"code_execution": "off"}, {}),
    ({"code_execution": "on", "container": "container_011-AbZ_9"},
     {"code_execution": True, "container": "container_011-AbZ_9"}),
    ({"code_execution": "on", "container": "c" * 128},
     {"code_execution": True, "container": "c" * 128}),
    ({"tool_search": "on"}, {"tool_search": True}),
    ({"tool_search": "off"}, {}),
    ({"effort": "low"}, {"output_config": {"effort": "low"}}),
    ({"effort": "xhigh"}, {"output_config": {"effort": "xhigh"}}),
    ({"effort": "max"}, {"output_config": {"effort": "max"}}),
    ({"output_schema": "answer"},
     {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}),
    ({"effort": "medium", "output_schema": "answer"},
     {"output_config": {"effort": "medium",
                        "format": {"type": "json_schema", "schema": SCHEMA}}}),
])
def test_accepted_on_both_routes(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    want = {"web_search": 0, "web_fetch": 0, "code_execution": False, "tool_search": False,
            "container": None, "output_config": None} | expected
    for request in (_json(ON, **fields), _query(ON, **fields)):
        got = {key: getattr(request, key) for key in want}
        assert got == want


@pytest.mark.parametrize("fields", [
    {"code_execution": True}, {"code_execution": False}, {"tool_search": True},
    {"tool_search": False}, {"web_fetch": None, "effort": None, "output_schema": None,
                             "container": None, "code_execution": None},
])
def test_json_takes_booleans_and_nulls(fields: dict[str, Any]) -> None:
    request = _json(ON, **fields)
    for key in ("code_execution", "tool_search"):
        assert getattr(request, key) is (fields.get(key) is True)


def test_off_needs_no_permission() -> None:
    off = {"web_fetch": "off", "code_execution": "off", "tool_search": "off"}
    assert _json(OFF, **off) == _json(OFF) == _query(OFF, **off)


def test_operator_mcp_servers_and_compaction_go_on_every_request() -> None:
    settings = dataclasses.replace(OFF, compaction=True, mcp_servers=(
        McpServer("docs", "https://mcp.example.com", "T", TOKEN),
        McpServer("open", "https://open.example.com"),
    ))
    for request in (_json(settings), _query(settings)):
        assert request.compaction is True
        assert request.mcp_servers == (
            {"type": "url", "name": "docs", "url": "https://mcp.example.com",
             "authorization_token": TOKEN},
            {"type": "url", "name": "open", "url": "https://open.example.com"},
        )
    assert (_json(OFF).compaction, _json(OFF).mcp_servers) == (False, ())


FETCH_SHAPE = 'web_fetch must be "off", "on" or a number of fetches.'
CODE_SHAPE = 'code_execution must be "on" or "off".'
SEARCH_SHAPE = 'tool_search must be "on" or "off".'
CONTAINER_SHAPE = ("container must be a container id from an earlier reply's container "
                   "event (1 to 128 characters of A-Z a-z 0-9 _ -).")
EFFORT_SHAPE = "effort must be one of low, medium, high, xhigh, max."
SCHEMA_NAME = "output_schema must name one of this server's schemas: answer."

# (settings, fields, message): on both routes.
REFUSALS = [
    pytest.param(OFF, {"web_fetch": "on"}, "Web fetch is not enabled on this server.",
                 id="fetch-off"),
    pytest.param(OFF, {"web_fetch": 1}, "Web fetch is not enabled on this server.",
                 id="fetch-uses-off"),
    pytest.param(ON, {"web_fetch": 3}, "web_fetch must be from 1 to 2 fetches.",
                 id="fetch-above"),
    pytest.param(ON, {"web_fetch": 0}, "web_fetch must be from 1 to 2 fetches.", id="fetch-0"),
    pytest.param(ON, {"web_fetch": "all"}, FETCH_SHAPE, id="fetch-word"),
    pytest.param(ON, {"web_fetch": ""}, FETCH_SHAPE, id="fetch-empty"),
    pytest.param(OFF, {"code_execution": "on"}, "Code execution is not enabled on this server.",
                 id="code-off"),
    pytest.param(ON, {"code_execution": "yes"}, CODE_SHAPE, id="code-yes"),
    pytest.param(ON, {"code_execution": "ON"}, CODE_SHAPE, id="code-case"),
    pytest.param(ON, {"code_execution": ""}, CODE_SHAPE, id="code-empty"),
    pytest.param(OFF, {"tool_search": "on"}, "Tool search is not enabled on this server.",
                 id="tool-search-off"),
    pytest.param(ON, {"tool_search": "1"}, SEARCH_SHAPE, id="tool-search-1"),
    pytest.param(ON, {"container": "container_1"},
                 'container needs code_execution "on" in the same request.',
                 id="container-without-code"),
    pytest.param(ON, {"container": "container_1", "code_execution": "off"},
                 'container needs code_execution "on" in the same request.',
                 id="container-code-off"),
    pytest.param(ON, {"code_execution": "on", "container": ""}, CONTAINER_SHAPE,
                 id="container-empty"),
    pytest.param(ON, {"code_execution": "on", "container": "c" * 129}, CONTAINER_SHAPE,
                 id="container-long"),
    pytest.param(ON, {"code_execution": "on", "container": "a/b"}, CONTAINER_SHAPE,
                 id="container-slash"),
    pytest.param(ON, {"code_execution": "on", "container": "a b"}, CONTAINER_SHAPE,
                 id="container-space"),
    pytest.param(ON, {"effort": "extreme"}, EFFORT_SHAPE, id="effort-word"),
    pytest.param(ON, {"effort": "HIGH"}, EFFORT_SHAPE, id="effort-case"),
    pytest.param(ON, {"effort": ""}, EFFORT_SHAPE, id="effort-empty"),
    pytest.param(ON, {"output_schema": "other"}, SCHEMA_NAME, id="schema-unknown"),
    pytest.param(ON, {"output_schema": ""}, SCHEMA_NAME, id="schema-empty"),
    pytest.param(OFF, {"output_schema": "answer"},
                 "Structured outputs are not enabled on this server (no output schemas); "
                 "leave output_schema out.", id="schemas-off"),
]
JSON_REFUSALS = [
    pytest.param(ON, {"web_fetch": True}, FETCH_SHAPE, id="fetch-true"),
    pytest.param(ON, {"web_fetch": "1"}, FETCH_SHAPE, id="fetch-string-number"),
    pytest.param(ON, {"web_fetch": 1.0}, FETCH_SHAPE, id="fetch-float"),
    pytest.param(ON, {"code_execution": 1}, CODE_SHAPE, id="code-1"),
    pytest.param(ON, {"code_execution": ["on"]}, CODE_SHAPE, id="code-list"),
    pytest.param(OFF, {"code_execution": True}, "Code execution is not enabled on this server.",
                 id="code-true-off"),
    pytest.param(OFF, {"tool_search": True}, "Tool search is not enabled on this server.",
                 id="tool-search-true-off"),
    pytest.param(ON, {"tool_search": {}}, SEARCH_SHAPE, id="tool-search-object"),
    pytest.param(ON, {"code_execution": True, "container": 7}, CONTAINER_SHAPE,
                 id="container-number"),
    pytest.param(ON, {"code_execution": True, "container": {"id": "c"}}, CONTAINER_SHAPE,
                 id="container-object"),
    pytest.param(ON, {"effort": 3}, EFFORT_SHAPE, id="effort-number"),
    pytest.param(ON, {"effort": ["low"]}, EFFORT_SHAPE, id="effort-list"),
    pytest.param(ON, {"output_schema": {"type": "object"}}, SCHEMA_NAME, id="schema-inline"),
    pytest.param(ON, {"output_config": {"effort": "low"}},
                 "Unknown field(s): output_config.", id="api-shape-field"),
    pytest.param(ON, {"mcp_servers": []}, "Unknown field(s): mcp_servers.",
                 id="mcp-is-the-operators"),
]


@pytest.mark.parametrize(("settings", "fields", "message"), REFUSALS)
def test_refused_on_both_routes(settings: Settings, fields: dict[str, Any], message: str) -> None:
    for parse in (_json, _query):
        with pytest.raises(Refused) as refused:
            parse(settings, **fields)
        assert (refused.value.status, refused.value.type, refused.value.message) == (
            400, "invalid_request_error", message
        )


@pytest.mark.parametrize(("settings", "fields", "message"), JSON_REFUSALS)
def test_refused_in_json(settings: Settings, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused) as refused:
        _json(settings, **fields)
    assert (refused.value.status, refused.value.message) == (400, message)
