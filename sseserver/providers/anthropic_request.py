"""What a GenerationRequest becomes on the wire to the Messages API: the body's parameters
and the `anthropic-beta` header's list (docs/protocol.md, "Thinking, tools and caching").

The server tools go first in `tools`, then the operator's own (deferred when the request
uses tool search), then one `mcp_toolset` per MCP server. A pause_turn continuation sends
the same request again with the reply so far as the assistant turn, and what the reply has
left of its searches, fetches and tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .base import Block, GenerationRequest, Thinking

# The basic web search tool: every model with web search has it (the later versions add
# filtering by code execution, which brings blocks of its own).
WEB_SEARCH_TOOL: Final = "web_search_20250305"
WEB_FETCH_TOOL: Final = "web_fetch_20250910"
CODE_EXECUTION_TOOL: Final = "code_execution_20250825"
TOOL_SEARCH_TOOL: Final = "tool_search_tool_regex_20251119"
TOOL_SEARCH_NAME: Final = "tool_search_tool_regex"
COMPACT_EDIT: Final = "compact_20260112"
# The betas these features are behind (the SDK's `beta` namespace carries their types).
MCP_BETA: Final = "mcp-client-2025-11-20"
COMPACT_BETA: Final = "compact-2026-01-12"


def request_params(request: GenerationRequest, cache_control: Block | None) -> dict[str, Any]:
    """The Messages API body for `request` (without `stream`, which MessagesAPI adds)."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [
            {"role": m.role, "content": m.content if isinstance(m.content, str)
             else list(m.content)} for m in request.messages
        ],
        "thinking": thinking_param(request.thinking),
    }
    if request.system:
        params["system"] = request.system
    tools = request_tools(request, request.web_search, request.web_fetch)
    if tools:
        params["tools"] = tools
    if request.mcp_servers:
        params["mcp_servers"] = list(request.mcp_servers)
    if request.compaction:
        params["context_management"] = {"edits": [{"type": COMPACT_EDIT}]}
    if request.output_config:
        params["output_config"] = request.output_config
    if request.container is not None:
        params["container"] = request.container
    if cache_control is not None:
        # Automatic caching: the API puts the breakpoint on the request's last block,
        # so everything before it (system, the history, the new message) is the
        # prefix the next turn reads from the cache (docs/protocol.md, "Thinking,
        # tools and caching").
        params["cache_control"] = cache_control
    return params


def request_betas(request: GenerationRequest) -> tuple[str, ...]:
    """The betas the request's features need, for one `anthropic-beta` header."""
    betas = []
    if request.mcp_servers:
        betas.append(MCP_BETA)
    if request.compaction:
        betas.append(COMPACT_BETA)
    return tuple(betas)


def mcp_tokens(request: GenerationRequest) -> list[str]:
    """The MCP servers' tokens, which no message shown or logged may hold."""
    return [server["authorization_token"] for server in request.mcp_servers
            if server.get("authorization_token")]


def thinking_param(thinking: Thinking) -> dict[str, Any]:
    """The API's thinking parameter. Thinking is asked for `summarized` because some
    models otherwise omit its text, which the reader would then wait through unseen."""
    if thinking == "off":
        return {"type": "disabled"}
    if thinking == "adaptive":
        return {"type": "adaptive", "display": "summarized"}
    return {"type": "enabled", "budget_tokens": thinking, "display": "summarized"}


def request_tools(request: GenerationRequest, searches: int, fetches: int) -> list[Block]:
    """The request's `tools`: the server tools (web search and fetch with what is left of
    their uses), the operator's own (deferred behind tool search when it is on), and each
    MCP server's toolset."""
    tools: list[Block] = []
    if searches > 0:
        tools.append(web_search_tool(searches))
    if fetches > 0:
        tools.append({"type": WEB_FETCH_TOOL, "name": "web_fetch", "max_uses": fetches})
    if request.code_execution:
        tools.append({"type": CODE_EXECUTION_TOOL, "name": "code_execution"})
    if request.tool_search:
        tools.append({"type": TOOL_SEARCH_TOOL, "name": TOOL_SEARCH_NAME})
        tools.extend(tool | {"defer_loading": True} for tool in request.tools)
    else:
        tools.extend(request.tools)
    tools.extend({"type": "mcp_toolset", "mcp_server_name": server["name"]}
                 for server in request.mcp_servers)
    return tools


def web_search_tool(max_uses: int) -> Block:
    return {"type": WEB_SEARCH_TOOL, "name": "web_search", "max_uses": max_uses}


def tool_uses(kept: Sequence[Block], name: str) -> int:
    """How many times the reply so far called the server tool `name`."""
    return sum(1 for block in kept
               if block.get("type") == "server_tool_use" and block.get("name") == name)


def may_continue(request: GenerationRequest, searches: int, fetches: int) -> bool:
    """Whether a paused turn may be continued: some server tool is on (only they pause a
    turn), and no counted tool has used up its bound, since a continuation without that
    tool would send its earlier blocks back without the tool that made them."""
    if request.web_search and searches >= request.web_search:
        return False
    if request.web_fetch and fetches >= request.web_fetch:
        return False
    return bool(request.web_search or request.web_fetch or request.code_execution
                or request.tool_search or request.mcp_servers)


def continuation_params(
    params: dict[str, Any], request: GenerationRequest, kept: Sequence[Block],
    searches: int, fetches: int, bounds: tuple[int, Thinking],
) -> dict[str, Any]:
    """The next request of a paused turn: the reply so far (`kept`, every block as the
    API returned it) as the assistant turn, with the searches and fetches the reply has
    left (`searches`, `fetches`: used so far) and its tokens left (`bounds`)."""
    max_tokens, thinking = bounds
    return params | {
        "messages": [*params["messages"][: len(request.messages)],
                     {"role": "assistant", "content": list(kept)}],
        "tools": request_tools(request, request.web_search - searches,
                               request.web_fetch - fetches),
        "max_tokens": max_tokens,
        "thinking": thinking_param(thinking),
    }
