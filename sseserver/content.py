"""Content arrays in a request's messages: the Messages API's own blocks, checked as
strictly as a string message (docs/protocol.md, "Content arrays").

A user message may hold `text`, `image`, `document` (attachments.py checks those two) and
`tool_result` blocks; an assistant message the blocks a
`turn` event carries (`text`, `thinking`, `redacted_thinking`, `tool_use`, a server tool's
`server_tool_use` and its result, MCP calls, results and listings, container uploads),
which a client sends back as it got them, and a `compaction` event's block (docs/protocol.md,
"Server tools"). The server tools' results are the API's to read: their shape is checked
only as far as the API's envelope (an object or a list where one belongs).
Every `tool_result` must answer a `tool_use` of the assistant message just before it, every
such `tool_use` must be answered, and the results come first, as the API requires. A call
of a tool the server does not offer is refused. Each text counts against
--max-message-chars; the body as a whole against --max-body-bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

from .attachments import Attachments
from .errors import BadRequest
from .ids import API_ID
from .providers.base import Block, Role

# The server tools' result blocks, sent back as the API returned them.
SERVER_RESULTS: Final = (
    "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
)
# Per role and type: the fields a block must have, and those it may have besides.
_FIELDS: Final[dict[Role, dict[str, tuple[frozenset[str], frozenset[str]]]]] = {
    "user": {
        "text": (frozenset({"type", "text"}), frozenset()),
        "image": (frozenset({"type", "source"}), frozenset()),
        "document": (frozenset({"type", "source"}), frozenset({"title", "context"})),
        "tool_result": (frozenset({"type", "tool_use_id"}), frozenset({"content", "is_error"})),
        "tool_approval": (frozenset({"type", "tool_use_id", "approved"}), frozenset({"reason"})),
    },
    "assistant": {
        "text": (frozenset({"type", "text"}), frozenset({"citations"})),
        "thinking": (frozenset({"type", "thinking", "signature"}), frozenset()),
        "redacted_thinking": (frozenset({"type", "data"}), frozenset()),
        "tool_use": (frozenset({"type", "id", "name", "input"}), frozenset({"caller"})),
        "server_tool_use": (frozenset({"type", "id", "name", "input"}), frozenset({"caller"})),
        **dict.fromkeys(SERVER_RESULTS, (
            frozenset({"type", "tool_use_id", "content"}), frozenset({"caller"}),
        )),
        "mcp_tool_use": (frozenset({"type", "id", "name", "server_name", "input"}), frozenset()),
        "mcp_tool_result": (frozenset({"type", "tool_use_id"}),
                            frozenset({"content", "is_error"})),
        "mcp_tool_listing": (frozenset({"type", "mcp_server_name", "tools"}), frozenset()),
        "container_upload": (frozenset({"type", "file_id"}), frozenset()),
        "compaction": (frozenset({"type"}),
                       frozenset({"content", "encrypted_content", "signature", "tool_changes"})),
    },
}
TextCheck = Callable[[str, str], str]
_A: Final = {"user": "a user", "assistant": "an assistant"}


def content_blocks(
    value: list[Any], role: Role, where: str, tools: Collection[str], text: TextCheck,
    files: Attachments,
) -> tuple[Block, ...]:
    """A message's content array, each block checked; `text(value, where)` checks a text
    against the size limits; `tools` are the names of the tools a request may call;
    `files` checks and counts the request's images and documents."""
    if not value:
        raise BadRequest(f"{where} must not be an empty list.")
    allowed = _FIELDS[role]
    blocks: list[Block] = []
    for index, block in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{at} must be an object with a type.")
        kind = block["type"]
        if kind not in allowed:
            kinds = ", ".join(allowed)
            raise BadRequest(f"{at}.type {kind[:40]!r} is not allowed in {_A[role]} message; "
                             f"allowed: {kinds}.")
        required, optional = allowed[kind]
        missing = sorted(required - set(block))
        extra = sorted(set(block) - required - optional)
        if missing or extra:
            wrong = f"lacks {', '.join(missing)}" if missing else f"has unknown {extra[0][:40]!r}"
            raise BadRequest(f"{at} ({kind}) {wrong}.")
        if kind == "image":
            block = files.image(block, at)
        elif kind == "document":
            block = files.document(block, at)
        else:
            _check(block, kind, at, tools, text, files)
        blocks.append(block)
    return tuple(blocks)


def _check(
    block: Block, kind: str, at: str, tools: Collection[str], text: TextCheck,
    files: Attachments,
) -> None:
    if kind == "text":
        _string(block, "text", at)
        text(block["text"], f"{at}.text")
        if not isinstance(block.get("citations", []), list | None):
            raise BadRequest(f"{at}.citations must be a list.")
    elif kind == "thinking":
        _string(block, "thinking", at)
        _string(block, "signature", at)
    elif kind == "redacted_thinking":
        _string(block, "data", at)
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        _tool_id(block, "id", at)
        _string(block, "name", at)
        if kind == "mcp_tool_use":
            _string(block, "server_name", at)
        if kind == "tool_use" and block["name"] not in tools:
            raise BadRequest(f"{at} calls {block['name'][:64]!r}, which this server does not "
                             "offer.")
        if not isinstance(block["input"], dict):
            raise BadRequest(f"{at}.input must be an object.")
    elif kind in SERVER_RESULTS:
        _tool_id(block, "tool_use_id", at)
        if not isinstance(block["content"], list | dict):
            raise BadRequest(f"{at}.content must be a list or an object.")
    elif kind == "mcp_tool_result":
        _tool_id(block, "tool_use_id", at)
        if not isinstance(block.get("is_error", False), bool):
            raise BadRequest(f"{at}.is_error must be true or false.")
        if not isinstance(block.get("content", ""), str | list):
            raise BadRequest(f"{at}.content must be a string or a list of text blocks.")
    elif kind == "mcp_tool_listing":
        _string(block, "mcp_server_name", at)
        if not isinstance(block["tools"], list):
            raise BadRequest(f"{at}.tools must be a list.")
    elif kind == "container_upload":
        if not isinstance(block["file_id"], str) or not API_ID.fullmatch(block["file_id"]):
            raise BadRequest(f"{at}.file_id must be a file id (letters, digits, _ and -).")
    elif kind == "compaction":
        for key in ("content", "encrypted_content", "signature"):
            if not isinstance(block.get(key), str | None):
                raise BadRequest(f"{at}.{key} must be a string or null.")
        if block.get("content") == "":
            raise BadRequest(f"{at}.content must not be empty (null: a failed compaction).")
        if not isinstance(block.get("tool_changes", []), list | None):
            raise BadRequest(f"{at}.tool_changes must be a list.")
    elif kind == "tool_approval":
        _tool_id(block, "tool_use_id", at)
        if not isinstance(block["approved"], bool):
            raise BadRequest(f"{at}.approved must be true or false.")
        if "reason" in block:
            _string(block, "reason", at)
            text(block["reason"], f"{at}.reason")
    elif kind == "tool_result":
        _tool_id(block, "tool_use_id", at)
        if not isinstance(block.get("is_error", False), bool):
            raise BadRequest(f"{at}.is_error must be true or false.")
        _result_content(block.get("content", ""), f"{at}.content", text, files)
    if "caller" in block and not isinstance(block["caller"], dict):
        raise BadRequest(f"{at}.caller must be an object.")


def _result_content(content: object, at: str, text: TextCheck, files: Attachments) -> None:
    """A tool_result's content: a string, or a list of text and image blocks."""
    if isinstance(content, str):
        if content:
            text(content, at)
        return
    if not isinstance(content, list):
        raise BadRequest(f"{at} must be a string or a list of text and image blocks.")
    for index, part in enumerate(content):
        where = f"{at}[{index}]"
        if isinstance(part, dict) and part.get("type") == "text" and set(part) == {
            "type", "text"
        } and isinstance(part["text"], str):
            text(part["text"], f"{where}.text")
        elif isinstance(part, dict) and part.get("type") == "image" and set(part) == {
            "type", "source"
        }:
            files.result_image(part, where)
        else:
            raise BadRequest(f"{where} must be a text block or a base64 image block.")


def _string(block: Block, key: str, at: str) -> None:
    if not isinstance(block[key], str):
        raise BadRequest(f"{at}.{key} must be a string.")


def _tool_id(block: Block, key: str, at: str) -> None:
    if not isinstance(block[key], str) or not API_ID.fullmatch(block[key]):
        raise BadRequest(f"{at}.{key} must be a tool call id (letters, digits, _ and -).")


_ANSWERS: Final = ("tool_result", "tool_approval")


def check_tool_answers(
    messages: list[tuple[Role, str | tuple[Block, ...]]], needs_approval: Collection[str],
) -> None:
    """Every tool call answered by the next message, with nothing else answered, the
    results first: what the API would otherwise refuse after the stream has begun. A call
    of a tool that needs approval may be answered by the user's `tool_approval`, in the
    last message only (the server then runs or denies it, and streams its result)."""
    last = len(messages) - 1
    for index, (role, content) in enumerate(messages):
        if role != "user":
            continue
        blocks = () if isinstance(content, str) else content
        answered = [b["tool_use_id"] for b in blocks if b["type"] in _ANSWERS]
        previous = messages[index - 1][1] if index else ""
        called = {} if isinstance(previous, str) else {
            b["id"]: b["name"] for b in previous if b["type"] == "tool_use"
        }
        calls = list(called)
        where = f"messages[{index}]"
        for position, block in enumerate(blocks):
            if block["type"] != "tool_approval":
                continue
            if index != last:
                raise BadRequest(f"{where}.content[{position}]: only the last message may "
                                 "hold tool_approval blocks; send the tool_result that was "
                                 "streamed instead.")
            name = called.get(block["tool_use_id"])
            if name is not None and name not in needs_approval:
                raise BadRequest(f"{where}.content[{position}] approves a call of {name!r}, "
                                 "which needs no approval.")
        for tool_use_id in answered:
            if tool_use_id not in calls:
                before = f"a tool_use of messages[{index - 1}]" if index else "a tool call"
                raise BadRequest(f"{where}.content has a tool_result for {tool_use_id!r}, "
                                 f"which is not {before}.")
        if any(b["type"] in _ANSWERS for b in blocks[len(answered):]) or any(
            b["type"] not in _ANSWERS for b in blocks[: len(answered)]
        ):
            raise BadRequest(f"{where}.content must start with its tool_result blocks.")
        if len(set(answered)) != len(answered):
            raise BadRequest(f"{where}.content answers one tool_use twice.")
        unanswered = [c for c in calls if c not in answered]
        if unanswered:
            raise BadRequest(f"{where}.content must answer every tool_use of "
                             f"messages[{index - 1}]; unanswered: {unanswered[0]!r}.")
    if messages and messages[-1][0] == "assistant" and not isinstance(messages[-1][1], str) \
            and any(b["type"] == "tool_use" for b in messages[-1][1]):
        raise BadRequest(f"messages[{len(messages) - 1}] calls tools: send it with a user "
                         "message of their tool_result blocks after it.")
