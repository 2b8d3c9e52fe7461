"""Claude's server tools and MCP calls as the AI SDK's tool parts (docs/protocol.md, "The
AI SDK's chat route"): the shapes @ai-sdk/anthropic gives them (its
anthropic-language-model.ts), built from our `tool` and `tool_result` events, which hold
what a client may see of them (docs/protocol.md, "Server tools").

The API runs these calls itself, within one of its replies: each part is
`providerExecuted`, so `useChat` neither calls `onToolCall` for it nor waits on it, and its
result does not end the step. As @ai-sdk/anthropic names them, the code execution tool's
bash and text editor calls are parts of `code_execution` whose input's `type` says which
(`bash_code_execution`, `text_editor_code_execution`, or `programmatic-tool-call` for a
call of `code_execution` itself); an MCP call is a `dynamic` part named after the MCP
server's tool, the server's name in its `providerMetadata`. What never reaches the client
(a fetched document, encrypted output, search results' encrypted content) is left out of
the outputs; file entries gain the file's `name` as the server looked it up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..tools.definitions import SERVER_TOOL_NAMES
from .sources import is_web_url

CODE_EXECUTION: Final = "code_execution"
# The code execution tool's calls: the type @ai-sdk/anthropic gives each call's input.
CODE_INPUT_TYPES: Final = {
    "code_execution": "programmatic-tool-call",
    "bash_code_execution": "bash_code_execution",
    "text_editor_code_execution": "text_editor_code_execution",
}
EXECUTED: Final = {"providerExecuted": True}


def is_claude_s(data: dict[str, Any]) -> bool:
    """A call or result of a tool the API runs: one of its server tools, or an MCP tool."""
    return data.get("name") in SERVER_TOOL_NAMES or "server_name" in data


def mcp_metadata(server_name: object) -> dict[str, Any]:
    """An MCP part's providerMetadata, as @ai-sdk/anthropic gives it."""
    return {"anthropic": {"type": "mcp-tool-use", "serverName": server_name}}


def call_chunk(data: dict[str, Any]) -> dict[str, Any]:
    """A server tool's or an MCP tool's `tool` event as its `tool-input-available`."""
    name, tool_input = data["name"], data["input"]
    available: dict[str, Any] = {"type": "tool-input-available", "toolCallId": data["id"]}
    if "server_name" in data:
        return available | {"toolName": name, "input": tool_input, **EXECUTED,
                            "providerMetadata": mcp_metadata(data["server_name"]),
                            "dynamic": True}
    if name in CODE_INPUT_TYPES:
        typed = {"type": CODE_INPUT_TYPES[name]}
        tool_input = typed | tool_input if isinstance(tool_input, dict) else typed
        name = CODE_EXECUTION
    return available | {"toolName": name, "input": tool_input, **EXECUTED}


def output_chunk(data: dict[str, Any]) -> dict[str, Any]:
    """A server tool's or an MCP tool's `tool_result` event as its output chunk."""
    call_id, name = data["tool_use_id"], data.get("name")
    mcp = "server_name" in data
    extra: dict[str, Any] = {**EXECUTED}
    if mcp:
        extra |= {"providerMetadata": mcp_metadata(data["server_name"]), "dynamic": True}
        if data.get("truncated") is True:
            extra["providerMetadata"] = extra["providerMetadata"] | {
                "sseserver": {"truncated": True}}
    if "error" in data:
        return {"type": "tool-output-error", "toolCallId": call_id,
                "errorText": _error_text(data["error"]), **extra}
    if mcp and data.get("is_error"):
        return {"type": "tool-output-error", "toolCallId": call_id,
                "errorText": _text(data.get("content")), **extra}
    mapped: Callable[[dict[str, Any]], Any] = OUTPUTS.get(str(name), _unknown)
    output = _mcp_output(data) if mcp else mapped(data)
    return {"type": "tool-output-available", "toolCallId": call_id, "output": output, **extra}


def _error_text(error: object) -> str:
    """A failed server tool's error code, and the API's message after it when it gave one."""
    if not isinstance(error, dict):
        return "error"
    code = str(error.get("code") or "error")
    message = error.get("message")
    return f"{code}: {message}" if isinstance(message, str) and message else code


def _text(content: object) -> str:
    return content if isinstance(content, str) else ""


def _mcp_output(data: dict[str, Any]) -> list[dict[str, Any]]:
    """An MCP result's text as the content blocks the API gave (joined into one)."""
    return [{"type": "text", "text": _text(data.get("content"))}]


def _web_search(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The shape @ai-sdk/anthropic gives web search results, less their encrypted content;
    only http(s) URLs."""
    return [{"type": "web_search_result", "url": r.get("url"), "title": r.get("title"),
             "pageAge": r.get("page_age")} for r in data.get("results") or []
            if isinstance(r, dict) and is_web_url(r.get("url"))]


def _web_fetch(data: dict[str, Any]) -> dict[str, Any]:
    """The fetched page's URL, title and time; the document itself stays out."""
    url = data.get("url")
    return {"type": "web_fetch_result", "url": url if is_web_url(url) else None,
            "retrievedAt": data.get("retrieved_at"),
            "content": {"type": "document", "title": data.get("title")}}


def _files(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [{"type": kind, "file_id": f.get("file_id"), "name": f.get("name")}
            for f in data.get("files") or [] if isinstance(f, dict)]


def _code_execution(data: dict[str, Any]) -> dict[str, Any]:
    """A run's output; an encrypted one (stdout null) without its stdout."""
    files = _files(data, "code_execution_output")
    if data.get("stdout") is None:
        return {"type": "encrypted_code_execution_result", "stderr": data.get("stderr"),
                "return_code": data.get("return_code"), "content": files}
    return {"type": "code_execution_result", "stdout": data.get("stdout"),
            "stderr": data.get("stderr"), "return_code": data.get("return_code"),
            "content": files}


def _bash(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bash_code_execution_result", "stdout": data.get("stdout"),
            "stderr": data.get("stderr"), "return_code": data.get("return_code"),
            "content": _files(data, "bash_code_execution_output")}


def _text_editor(data: dict[str, Any]) -> dict[str, Any]:
    """The editor's result block: `view`, `create` or `str_replace`, its fields as the API
    gave them (a view's content cut at the server's bound, then `truncated`)."""
    found = data.get("result")
    fields = dict(found) if isinstance(found, dict) else {}
    kind = fields.pop("type", None)
    output = {"type": f"text_editor_code_execution_{kind}_result", **fields}
    if data.get("truncated") is True:
        output["truncated"] = True
    return output


def _tool_search(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "tool_reference", "toolName": name} for name in data.get("tools") or []]


def _unknown(data: dict[str, Any]) -> dict[str, Any]:
    """A result of a server tool this mapping does not know: what the event holds."""
    return {key: value for key, value in data.items() if key not in ("tool_use_id", "name")}


OUTPUTS: Final[dict[str, Callable[[dict[str, Any]], Any]]] = {
    "web_search": _web_search,
    "web_fetch": _web_fetch,
    "code_execution": _code_execution,
    "bash_code_execution": _bash,
    "text_editor_code_execution": _text_editor,
    "tool_search_tool_regex": _tool_search,
    "tool_search_tool_bm25": _tool_search,
}
