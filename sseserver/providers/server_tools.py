"""What a reader is told of a server tool's result: the `tool_result` event's data.

The Messages API returns each server-run tool's result (web search, web fetch, code
execution, bash, the text editor, tool search, an MCP server's tool) whole, as one content
block. A reader gets what it can show: titles and URLs, a run's output and return code, the
names of the files it created, the tools a search found. What only the API can read back
(encrypted content and output) and what is bulky (a fetched document, a search result's
page) stays out; the whole block is kept for a continuation all the same (docs/protocol.md,
"Server tools").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

# The longest text a result carries to a reader (a file view, an MCP tool's answer).
MAX_RESULT_TEXT: Final = 16 * 1024
RESULT_BLOCKS: Final = frozenset({
    "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
    "tool_search_tool_result", "mcp_tool_result",
})
_EDIT_RESULTS: Final = {
    "text_editor_code_execution_view_result": "view",
    "text_editor_code_execution_create_result": "create",
    "text_editor_code_execution_str_replace_result": "str_replace",
}


@dataclass(slots=True)
class Call:
    """A server tool's call, as its result needs it: its name, input and MCP server."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    server_name: str | None = None


def tool_result(raw: dict[str, Any], call: Call | None) -> dict[str, Any]:
    """The `tool_result` event's data for a result block `raw` of RESULT_BLOCKS."""
    kind = str(raw["type"])
    tool_use_id = str(raw["tool_use_id"])
    name = call.name if call is not None else kind.removesuffix("_tool_result")
    tool_input = call.input if call is not None else {}
    summary: dict[str, Any] = {"tool_use_id": tool_use_id, "name": name}
    content = raw.get("content")
    if kind == "mcp_tool_result":
        summary["server_name"] = call.server_name if call is not None else None
        summary["is_error"] = bool(raw.get("is_error"))
        return summary | _text(_mcp_text(content))
    if kind == "bash_code_execution_tool_result":
        summary["command"] = tool_input.get("command")
    elif kind == "text_editor_code_execution_tool_result":
        summary["command"] = tool_input.get("command")
        summary["path"] = tool_input.get("path")
    if isinstance(content, dict) and str(content.get("type", "")).endswith("_error"):
        error = {"code": content.get("error_code")}
        if isinstance(content.get("error_message"), str):
            error["message"] = content["error_message"]
        return summary | {"error": error}
    return summary | _success(kind, content)


def _success(kind: str, content: Any) -> dict[str, Any]:
    if kind == "web_search_tool_result":
        return {"results": [
            {"title": r.get("title"), "url": r["url"], "page_age": r.get("page_age")}
            for r in content if r.get("type") == "web_search_result"
        ]}
    if kind == "web_fetch_tool_result":  # the fetched document itself stays out
        document = content.get("content")
        title = document.get("title") if isinstance(document, dict) else None
        return {"url": content.get("url"), "title": title,
                "retrieved_at": content.get("retrieved_at")}
    if kind in ("code_execution_tool_result", "bash_code_execution_tool_result"):
        return {
            "stdout": content.get("stdout"),  # None when encrypted: the API's alone
            "stderr": content.get("stderr"),
            "return_code": content.get("return_code"),
            "files": [{"file_id": f["file_id"], "name": None}
                      for f in content.get("content") or () if "file_id" in f],
        }
    if kind == "text_editor_code_execution_tool_result":
        result = {key: value for key, value in content.items() if key != "type"}
        result = {"type": _EDIT_RESULTS.get(str(content.get("type")), content.get("type"))
                  } | result
        if isinstance(result.get("content"), str):
            result |= _text(result["content"])
        return {"result": result}
    # tool_search_tool_result
    return {"tools": [str(r.get("tool_name")) for r in content.get("tool_references") or ()]}


def _mcp_text(content: Any) -> str:
    """An MCP tool's answer as text: a string as is, its text blocks joined."""
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content or ()
                     if isinstance(b, dict) and b.get("type") == "text")


def _text(text: str) -> dict[str, Any]:
    """`{"content": text}`, cut to MAX_RESULT_TEXT bytes of UTF-8 (then `truncated`)."""
    encoded = text.encode()
    if len(encoded) <= MAX_RESULT_TEXT:
        return {"content": text}
    cut = encoded[:MAX_RESULT_TEXT].decode(errors="ignore")
    return {"content": cut, "truncated": True}


def files_of(data: object) -> list[dict[str, Any]]:
    """The files a `tool_result` event's data lists, whose names are still to be found."""
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, list) else []
