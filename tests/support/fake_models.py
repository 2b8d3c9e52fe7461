"""The fake's Models API and its checks of the request parameters for Claude's server tools.

``GET /v1/models/{id}`` answers a ``ModelInfo`` (the SDK's ``anthropic.types.ModelInfo``)
whose ``capabilities`` are ``FakeAnthropic.models[id]`` (a ``ModelCapabilities`` dict, from
``capabilities(...)``), or everything supported for an id it does not list.

``validate_features`` refuses, as the Messages API does, a body whose ``output_config``,
``container``, ``context_management``, ``mcp_servers`` or server tools are malformed, that
uses a beta feature without its ``anthropic-beta`` header, an MCP server without its
``mcp_toolset`` (or the reverse), ``defer_loading`` without a tool search tool, or asks a
model for what its capabilities lack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

MODELS_PATH: Final = "/v1/models/"
EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")
MCP_BETA: Final = "mcp-client-2025-11-20"
COMPACT_BETA: Final = "compact-2026-01-12"
TOOL_SEARCH_TYPES: Final = frozenset(
    {"tool_search_tool_regex_20251119", "tool_search_tool_bm25_20251119"}
)
SERVER_TOOL_TYPES: Final = frozenset({
    "web_search_20250305", "web_fetch_20250910", "code_execution_20250825", *TOOL_SEARCH_TYPES,
})
_USES_TOOLS: Final = frozenset({"web_search_20250305", "web_fetch_20250910"})


def _support(value: bool) -> dict[str, bool]:
    return {"supported": value}


def capabilities(
    *, effort: Sequence[str] | None = EFFORTS, structured_outputs: bool = True,
    code_execution: bool = True, web_search: bool = True, web_fetch: bool | None = None,
    compaction: bool = True,
) -> dict[str, Any]:
    """A ``ModelCapabilities`` dict; ``effort`` None: no effort control at all.
    ``web_fetch`` None: no ``server_tools.web_fetch`` entry, as the SDK's type has none."""
    levels = effort or ()
    server_tools: dict[str, Any] = {
        "supported": code_execution or web_search or bool(web_fetch),
        "code_execution": _support(code_execution), "web_search": _support(web_search),
    }
    if web_fetch is not None:
        server_tools["web_fetch"] = _support(web_fetch)
    return {
        "batch": _support(True), "citations": _support(True),
        "code_execution": _support(code_execution),
        "context_management": {
            "supported": compaction, "compact_20260112": _support(compaction),
            "clear_thinking_20251015": _support(True),
            "clear_tool_uses_20250919": _support(True),
        },
        "effort": {"supported": effort is not None,
                   **{level: _support(level in levels) for level in EFFORTS}},
        "image_input": _support(True), "pdf_input": _support(True),
        "server_tools": server_tools,
        "structured_outputs": _support(structured_outputs),
        "thinking": {"supported": True, "types": {"adaptive": _support(True),
                                                  "enabled": _support(True)}},
    }


def model_info(model_id: str, caps: Mapping[str, Any] | None) -> dict[str, Any]:
    """``GET /v1/models/{id}``'s body."""
    return {
        "type": "model", "id": model_id, "display_name": model_id,
        "created_at": "2026-01-01T00:00:00Z", "lifecycle": "active",
        "deprecated_at": None, "retires_at": None, "line": None,
        "max_input_tokens": 200000, "max_tokens": 64000,
        "capabilities": dict(caps) if caps is not None else capabilities(),
    }


def _betas(headers: Mapping[str, str]) -> set[str]:
    return {beta.strip() for beta in headers.get("anthropic-beta", "").split(",")}


def validate_features(
    body: dict[str, Any], headers: Mapping[str, str], models: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """Anthropic's 400 message for the body's server-tool parameters, else None."""
    betas = _betas(headers)
    caps = models.get(body["model"]) or capabilities()
    return (_validate_tools(body.get("tools"), caps)
            or _validate_output_config(body, caps)
            or _validate_container(body)
            or _validate_context_management(body, betas, caps)
            or _validate_mcp(body, betas))


def _validate_tools(tools: object, caps: Mapping[str, Any]) -> str | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    types = [tool.get("type", "custom") for tool in tools if isinstance(tool, dict)]
    searchable = any(kind in TOOL_SEARCH_TYPES for kind in types)
    names: set[str] = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return f"tools.{index}: Input should be a valid dictionary"
        kind = tool.get("type", "custom")
        if tool.get("defer_loading") and not searchable:
            return (f"tools.{index}: defer_loading is only valid with a tool search tool "
                    "(tool_search_tool_regex or tool_search_tool_bm25) in tools")
        if kind == "mcp_toolset":
            if not isinstance(tool.get("mcp_server_name"), str):
                return f"tools.{index}.mcp_server_name: Field required"
            continue
        name = tool.get("name")
        if name in names:
            return f"tools: Tool names must be unique. Duplicate: {name}"
        names.add(str(name))
        if kind == "custom":
            if not isinstance(name, str) or not isinstance(
                tool.get("input_schema"), dict
            ) or tool["input_schema"].get("type") != "object":
                return "tools: a custom tool needs a name and an object input_schema"
            continue
        if kind not in SERVER_TOOL_TYPES:
            return f"tools.{index}: this fake does not know the tool type {kind!r}"
        uses = tool.get("max_uses")
        if kind in _USES_TOOLS and uses is not None and (
            isinstance(uses, bool) or not isinstance(uses, int) or uses < 1
        ):
            return f"tools.{index}.max_uses: Input should be greater than or equal to 1"
        server_tools = caps["server_tools"]
        if kind == "code_execution_20250825" and not server_tools["code_execution"]["supported"]:
            return f"tools.{index}: code execution is not supported by this model"
        if kind == "web_fetch_20250910" and not server_tools.get(
            "web_fetch", {"supported": True}
        )["supported"]:
            return f"tools.{index}: web fetch is not supported by this model"
    return None


def _validate_output_config(body: dict[str, Any], caps: Mapping[str, Any]) -> str | None:
    if "output_config" not in body:
        return None
    config = body["output_config"]
    if not isinstance(config, dict) or set(config) - {"effort", "format"}:
        return "output_config: Input should be an object with only effort and format"
    effort = config.get("effort")
    if effort is not None:
        if effort not in EFFORTS:
            return ("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' "
                    "or 'max'")
        if not caps["effort"]["supported"] or not caps["effort"].get(
            effort, {"supported": False}
        )["supported"]:
            return f"output_config.effort: {effort!r} is not supported by this model"
    form = config.get("format")
    if form is not None:
        if not isinstance(form, dict) or form.get("type") != "json_schema" or not isinstance(
            form.get("schema"), dict
        ) or set(form) != {"type", "schema"}:
            return ("output_config.format: Input should be {'type': 'json_schema', "
                    "'schema': {...}}")
        if not caps["structured_outputs"]["supported"]:
            return "output_config.format: structured outputs are not supported by this model"
    return None


def _validate_container(body: dict[str, Any]) -> str | None:
    if "container" not in body or body["container"] is None:
        return None
    if not isinstance(body["container"], str) or not body["container"]:
        return "container: Input should be a valid string"
    return None


def _validate_context_management(
    body: dict[str, Any], betas: set[str], caps: Mapping[str, Any]
) -> str | None:
    if "context_management" not in body:
        return None
    if COMPACT_BETA not in betas:
        return ("context_management: Extra inputs are not permitted (compaction needs the "
                f"anthropic-beta header {COMPACT_BETA})")
    management = body["context_management"]
    edits = management.get("edits") if isinstance(management, dict) else None
    if not isinstance(edits, list) or not edits or not all(
        isinstance(edit, dict) and edit.get("type") == "compact_20260112" for edit in edits
    ):
        return "context_management.edits: Input should be a list of {'type': 'compact_20260112'}"
    if not caps["context_management"].get("compact_20260112", {"supported": False})[
        "supported"
    ]:
        return "context_management: compaction is not supported by this model"
    return None


def _validate_mcp(body: dict[str, Any], betas: set[str]) -> str | None:
    tools: list[Any] = body["tools"] if isinstance(body.get("tools"), list) else []
    toolsets: list[object] = [tool.get("mcp_server_name") for tool in tools
                if isinstance(tool, dict) and tool.get("type") == "mcp_toolset"]
    if "mcp_servers" not in body and not toolsets:
        return None
    if MCP_BETA not in betas:
        return (f"mcp_servers: Extra inputs are not permitted (MCP needs the anthropic-beta "
                f"header {MCP_BETA})")
    servers = body.get("mcp_servers") or []
    if not isinstance(servers, list):
        return "mcp_servers: Input should be a valid list"
    names: list[str] = []
    for index, server in enumerate(servers):
        if not isinstance(server, dict) or server.get("type") != "url" or not isinstance(
            server.get("name"), str
        ) or not isinstance(server.get("url"), str):
            return f"mcp_servers.{index}: Input should be {{'type': 'url', 'name', 'url'}}"
        token = server.get("authorization_token")
        if token is not None and not isinstance(token, str):
            return f"mcp_servers.{index}.authorization_token: Input should be a valid string"
        if set(server) - {"type", "name", "url", "authorization_token",
                          "tool_configuration"}:
            return f"mcp_servers.{index}: Extra inputs are not permitted"
        if server["name"] in names:
            return f"mcp_servers: MCP server names must be unique: {server['name']}"
        names.append(server["name"])
    for name in names:
        if toolsets.count(name) != 1:
            return (f"mcp_servers: MCP server '{name}' must be referenced by exactly one "
                    "mcp_toolset in tools")
    for toolset in toolsets:
        if toolset not in names:
            return f"tools: mcp_toolset references an unknown MCP server '{toolset}'"
    return None
