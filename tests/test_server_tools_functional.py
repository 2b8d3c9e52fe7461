"""The server-tool options through the real server against the fake API: what a request
asks becomes the Messages API's own parameters and beta headers; the MCP token reaches
only the API; a model whose capabilities (the Models API) lack what is asked is refused
here with no upstream request; and the SDK's knowledge stands in when the key cannot read
the Models API."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from sseserver.config import load_settings
from sseserver.server_tools_config import OutputSchema

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, HttpError, RecordedRequest, Reply
from .support.fake_models import capabilities
from .support.sse_client import open_sse
from .test_validation_server_options import OFF, ON, REFUSALS

MODEL = "claude-sonnet-5-5"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}
TOKEN = "mcp-tok-5f0c2a9e1b7d4c3a8e6f"
# Operator tools for a server with --tool-search on (which needs some).
EXAMPLE_TOOLS = Path(__file__).parent.parent / "examples" / "tools.json"
TOOL = {"name": "lookup", "description": "Look a word up.",
        "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}}}


async def _health(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/healthz"
    ) as response:
        body: dict[str, Any] = await response.json()
        return body


async def _known(server: RunningServer, model: str = MODEL) -> dict[str, Any]:
    """The model's capabilities once the background fetch has them."""
    for _ in range(200):
        models = (await _health(server))["capabilities"]["models"]
        if model in models:
            found: dict[str, Any] = models[model]
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"{model} never became known")


async def _post(server: RunningServer, **fields: Any) -> tuple[int, Any]:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json=body
    ) as response:
        return response.status, await response.json()


async def _reply(server: RunningServer, fake: FakeAnthropic, **fields: Any) -> RecordedRequest:
    """Run one reply through POST /api/streams; the upstream request it made."""
    fake.enqueue(Reply(chunks=["ok"]))
    status, created = await _post(server, **fields)
    assert status == 201, created
    async with await open_sse(server.url + created["url"]) as stream:
        await stream.read_all()
    assert stream.text == "ok", stream.types()
    return fake.requests[-1]


async def test_effort_and_output_schema_reach_the_api_as_output_config(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic,
                                output_schemas=(OutputSchema("answer", SCHEMA),))
    record = await _reply(server, fake_anthropic, effort="high", output_schema="answer")
    assert record.body["output_config"] == {
        "effort": "high", "format": {"type": "json_schema", "schema": SCHEMA},
    }
    assert "anthropic-beta" not in record.headers
    record = await _reply(server, fake_anthropic)
    assert "output_config" not in record.body


async def test_the_query_takes_the_same_options(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True, web_fetch=3)
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    query = "message=hi&effort=low&code_execution=on&container=container_01&web_fetch=2"
    async with await open_sse(f"{server.url}/api/sse?{query}") as stream:
        await stream.read_all()
    assert stream.text == "ok"
    body = fake_anthropic.requests[-1].body
    assert (body["output_config"], body["container"]) == ({"effort": "low"}, "container_01")
    assert body["tools"] == [
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ]


async def test_server_tools_are_sent_in_tools(
    start_server: StartServer, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps([TOOL]))
    operator = load_settings(["--tools", str(tools_file), "--tool-search", "on"], {})
    server = await start_server(fake=fake_anthropic, web_search=2, web_fetch=4,
                                code_execution=True, tools=operator.tools, tool_search=True)
    record = await _reply(server, fake_anthropic, web_search="on", web_fetch="on",
                          code_execution="on", tool_search="on", container="container_7")
    assert record.body["tools"] == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 4},
        {"type": "code_execution_20250825", "name": "code_execution"},
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        TOOL | {"defer_loading": True},
    ]
    assert record.body["container"] == "container_7"
    record = await _reply(server, fake_anthropic)  # nothing asked: the operator's tool only
    assert record.body["tools"] == [TOOL]
    assert "container" not in record.body


async def test_mcp_token_reaches_only_the_api(
    start_server: StartServer, fake_anthropic: FakeAnthropic, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps([
        {"name": "docs", "url": "https://mcp.example.com/sse", "token_env": "DOCS_TOKEN"},
        {"name": "open", "url": "https://open.example.com/mcp"},
    ]))
    operator = load_settings(["--mcp-servers", str(path)], {"DOCS_TOKEN": TOKEN})
    server = await start_server(fake=fake_anthropic, mcp_servers=operator.mcp_servers,
                                log_level="debug")
    record = await _reply(server, fake_anthropic)
    assert record.body["mcp_servers"] == [
        {"type": "url", "name": "docs", "url": "https://mcp.example.com/sse",
         "authorization_token": TOKEN},
        {"type": "url", "name": "open", "url": "https://open.example.com/mcp"},
    ]
    assert record.body["tools"] == [
        {"type": "mcp_toolset", "mcp_server_name": "docs"},
        {"type": "mcp_toolset", "mcp_server_name": "open"},
    ]
    assert record.headers["anthropic-beta"] == "mcp-client-2025-11-20"
    # A refused request and a failed upstream request are logged too: still no token.
    assert (await _post(server, effort="none"))[0] == 400
    # An upstream error that echoes the token (as a server's might) is scrubbed.
    fake_anthropic.enqueue(HttpError(400, "invalid_request_error", f"bad token {TOKEN}"))
    status, created = await _post(server)
    assert status == 201
    async with await open_sse(server.url + created["url"]) as stream:
        await stream.read_all()
    errors = [json.loads(e.data) for e in stream.events if e.type == "error"]
    assert errors[0]["message"] == "bad token [redacted]"
    assert TOKEN not in bytes(stream.raw).decode()
    health = await _health(server)
    assert health["capabilities"]["mcp_servers"] == ["docs", "open"]
    assert TOKEN not in json.dumps(health)
    assert "mcp.example.com" not in json.dumps(health)
    assert TOKEN not in repr(server.settings)
    assert any(r.name == "aiohttp.access" for r in caplog.records)  # the access log ran
    assert [r.getMessage() for r in caplog.records if TOKEN in r.getMessage()] == []
    assert TOKEN not in caplog.text


async def test_compaction_sends_context_management_with_its_beta(
    start_server: StartServer, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps([{"name": "docs", "url": "https://mcp.example.com/sse"}]))
    mcp = load_settings(["--mcp-servers", str(path)], {}).mcp_servers
    server = await start_server(fake=fake_anthropic, compaction=True)
    record = await _reply(server, fake_anthropic)
    assert record.body["context_management"] == {"edits": [{"type": "compact_20260112"}]}
    assert record.headers["anthropic-beta"] == "compact-2026-01-12"
    both = await start_server(fake=fake_anthropic, compaction=True, mcp_servers=mcp)
    record = await _reply(both, fake_anthropic)
    assert record.headers["anthropic-beta"] == "mcp-client-2025-11-20,compact-2026-01-12"


LACKS = [
    pytest.param({"effort": ("low", "high")}, {}, {"effort": "max"},
                 "Model 'claude-sonnet-5-5' does not support effort 'max' (its levels: low, "
                 "high).", id="effort-level"),
    pytest.param({"effort": None}, {}, {"effort": "low"},
                 "Model 'claude-sonnet-5-5' does not support effort 'low' (it has no effort "
                 "levels).", id="no-effort"),
    pytest.param({"structured_outputs": False}, {}, {"output_schema": "answer"},
                 "Model 'claude-sonnet-5-5' does not support structured outputs "
                 "(output_schema).", id="structured-outputs"),
    pytest.param({"web_fetch": False}, {"web_fetch": 2}, {"web_fetch": "on"},
                 "Model 'claude-sonnet-5-5' does not support web fetch (web_fetch).",
                 id="web-fetch"),
    pytest.param({"code_execution": False}, {"code_execution": True},
                 {"code_execution": "on"},
                 "Model 'claude-sonnet-5-5' does not support code execution "
                 "(code_execution).", id="code-execution"),
    pytest.param({"compaction": False}, {"compaction": True}, {},
                 "Model 'claude-sonnet-5-5' does not support compaction, which this server "
                 "asks for on every request (--compaction); ask for another model.",
                 id="compaction"),
]


@pytest.mark.parametrize(("caps", "settings", "fields", "message"), LACKS)
async def test_a_model_that_lacks_a_capability_is_refused_here(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caps: dict[str, Any],
    settings: dict[str, Any], fields: dict[str, Any], message: str,
) -> None:
    fake_anthropic.models[MODEL] = capabilities(**caps)
    server = await start_server(fake=fake_anthropic, **settings,
                                output_schemas=(OutputSchema("answer", SCHEMA),))
    assert (await _known(server))["source"] == "models_api"
    status, body = await _post(server, **fields)
    assert (status, body) == (400, {"error": {"type": "invalid_request_error",
                                              "message": message}})
    query = "".join(f"&{key}={value}" for key, value in fields.items())
    async with aiohttp.ClientSession() as session, session.get(
        f"{server.url}/api/sse?message=hi{query}"
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == message
    assert fake_anthropic.request_count == 0
    assert (await _health(server))["active_streams"] == 0


async def test_healthz_shows_each_models_capabilities(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.models["claude-haiku-5-5"] = capabilities(
        effort=None, structured_outputs=False, code_execution=False, web_fetch=False,
        compaction=False,
    )
    server = await start_server(fake=fake_anthropic, models=("claude-haiku-5-5",))
    assert await _known(server, "claude-haiku-5-5") == {
        "effort": False, "structured_outputs": False, "web_fetch": False,
        "code_execution": False, "compaction": False, "source": "models_api",
    }
    assert await _known(server) == {
        "effort": ["low", "medium", "high", "xhigh", "max"], "structured_outputs": True,
        "web_fetch": True, "code_execution": True, "compaction": True,
        "source": "models_api",
    }
    assert sorted(fake_anthropic.model_requests) == ["claude-haiku-5-5", MODEL]
    assert fake_anthropic.request_count == 0  # the Models API is not the Messages API


@pytest.mark.parametrize("error", [
    HttpError(401, "authentication_error"), HttpError(403, "permission_error"),
    HttpError(404, "not_found_error"),
])
async def test_without_the_models_api_the_sdk_decides_and_the_api_refuses(
    start_server: StartServer, fake_anthropic: FakeAnthropic, error: HttpError,
) -> None:
    """The key cannot read the Models API: what the SDK does not know is allowed, so the
    request goes upstream, where the API's own check refuses it."""
    fake_anthropic.models_error = error
    fake_anthropic.models[MODEL] = capabilities(effort=("low",))
    server = await start_server(fake=fake_anthropic)
    assert (await _known(server))["source"] == "sdk"
    record = await _reply(server, fake_anthropic, effort="low")
    assert record.body["output_config"] == {"effort": "low"}
    status, created = await _post(server, effort="max")
    assert status == 201
    async with await open_sse(server.url + created["url"]) as stream:
        await stream.read_all()
    errors = [json.loads(e.data) for e in stream.events if e.type == "error"]
    assert errors[0]["type"] == "invalid_request_error"
    assert "'max' is not supported by this model" in errors[0]["message"]


async def test_a_retired_model_in_the_sdks_table_can_do_nothing(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """claude-mythos-preview's end of life (the SDK's table) is past."""
    fake_anthropic.models_error = HttpError(404, "not_found_error")
    server = await start_server(fake=fake_anthropic, models=("claude-mythos-preview",))
    assert await _known(server, "claude-mythos-preview") == {
        "effort": False, "structured_outputs": False, "web_fetch": False,
        "code_execution": False, "compaction": False, "source": "sdk",
    }
    status, body = await _post(server, model="claude-mythos-preview", effort="low")
    assert status == 400
    assert body["error"]["message"].startswith("Model 'claude-mythos-preview' does not")
    assert fake_anthropic.request_count == 0


async def test_the_ai_sdk_chat_body_takes_the_same_options(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, code_execution=True,
                                output_schemas=(OutputSchema("answer", SCHEMA),))
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    chat = {"id": "c1", "messages": [{"id": "m0", "role": "user",
                                      "parts": [{"type": "text", "text": "hi"}]}]}
    body = chat | {"effort": "medium", "output_schema": "answer", "code_execution": True,
                   "container": "container_9"}
    async with await open_sse(server.url + "/api/chat", method="POST",
                              body=json.dumps(body).encode()) as stream:
        await stream.read_all()
    sent = fake_anthropic.requests[-1].body
    assert sent["output_config"] == {"effort": "medium",
                                     "format": {"type": "json_schema", "schema": SCHEMA}}
    assert sent["container"] == "container_9"
    assert sent["tools"] == [{"type": "code_execution_20250825", "name": "code_execution"}]
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/chat", json=chat | {"tool_search": "on"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == (
            "Tool search is not enabled on this server.")
    assert fake_anthropic.request_count == 1


async def test_every_refusal_over_http_starts_nothing(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """The unit refusals (test_validation_server_options.py), on both routes of a server
    with the options on and one with them off: each a 400 naming its field, nothing
    started, nothing sent upstream."""
    servers = {
        id(ON): await start_server(
            fake=fake_anthropic, web_search=3, web_fetch=2, code_execution=True,
            tool_search=True, tools=load_settings(["--tools", str(EXAMPLE_TOOLS)], {}).tools,
            output_schemas=ON.output_schemas,
        ),
        id(OFF): await start_server(fake=fake_anthropic),
    }
    async with aiohttp.ClientSession() as session:
        for case in REFUSALS:
            settings, fields, message = case.values
            assert isinstance(fields, dict)
            server = servers[id(settings)]
            refused = {"error": {"type": "invalid_request_error", "message": message}}
            async with session.post(server.url + "/api/streams", json={
                "messages": [{"role": "user", "content": "hi"}], **fields,
            }) as response:
                assert (response.status, await response.json()) == (400, refused), case.id
            query = "&".join(f"{key}={quote(str(value))}" for key, value in fields.items())
            async with session.get(f"{server.url}/api/sse?message=hi&{query}") as response:
                assert (response.status, await response.json()) == (400, refused), case.id
    for server in servers.values():
        assert (await _health(server))["active_streams"] == 0
    assert fake_anthropic.request_count == 0


async def test_the_ai_sdk_chat_route_refuses_what_the_model_lacks_too(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.models[MODEL] = capabilities(effort=("low",))
    server = await start_server(fake=fake_anthropic)
    assert (await _known(server))["effort"] == ["low"]
    chat = {"id": "c1", "effort": "high", "messages": [
        {"id": "m0", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/chat", json=chat
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == (
            "Model 'claude-sonnet-5-5' does not support effort 'high' (its levels: low).")
    assert fake_anthropic.request_count == 0
