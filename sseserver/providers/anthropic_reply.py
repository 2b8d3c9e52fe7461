"""One reply of Claude's, read from the Messages API's events into wire items.

`ReplyReader.on_event` takes every event but a text delta (the provider frames those
itself, the hot path) and returns the items they make, in the shapes of docs/protocol.md,
"Events": `thinking` per thinking delta, `thinking_hidden` once per thinking block whose
text is not shown, an operator's tool call as `tool_start` and `tool_input` deltas, `tool`
once a tool's input is complete (a server tool's and an MCP server's tool's too), each
server tool's `tool_result` (server_tools.py: what a reader can show, never encrypted or
bulky content), a `compaction` with its whole block, a `file` for a file uploaded to the
code execution container, and a text block's `citation`s after its last text. Signatures
and encrypted content never become an item, but a compaction's block, which the client
sends back as it is. A block or delta of a type the server does not know becomes
one generic `block` event (`unknown_block`), so nothing is dropped in silence; unknown event
types between blocks (the API's own additions to its framing) make nothing.

A reply may span several upstream requests: a turn that pauses (`pause_turn`) is continued
by sending what it produced so far back as the assistant turn, and so is one that calls
tools (tools/loop.py), with their results. With `keep`, the reader keeps
every content block exactly as the API returned it (signatures and encrypted content
included) for that, up to `MAX_KEPT_BYTES`. Usage is summed over the requests; `container`
is the code execution container the last request named (the client names it next turn).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from .base import Event, Item, ProviderError, Usage
from .server_tools import RESULT_BLOCKS, Call, tool_result

# Past this, a paused reply is not continued (the reply so far would have to be resent).
MAX_KEPT_BYTES: Final = 8 * 1024 * 1024
_NOTHING: Final[tuple[Item, ...]] = ()
_CALLS: Final = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# An MCP server's tool listing makes no event: it is the API's, sent back as it came.
_KNOWN_BLOCKS: Final = frozenset({
    "text", "thinking", "redacted_thinking", *_CALLS, *RESULT_BLOCKS, "compaction",
    "container_upload", "mcp_tool_listing",
})
_KNOWN_DELTAS: Final = frozenset({
    "text_delta", "thinking_delta", "citations_delta", "input_json_delta", "signature_delta",
    "compaction_delta",
})
# Left out of an unknown block's event: what only the API can read back.
_OPAQUE_KEYS: Final = frozenset({"signature", "data", "encrypted_content", "encrypted_index"})
MAX_UNKNOWN_BYTES: Final = 16 * 1024
_USAGE_FIELDS: Final = (
    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
)


class _Block:
    """A content block still streaming: what its stop needs, and its raw form if kept."""

    __slots__ = ("citations", "kind", "parts", "raw", "shown")

    def __init__(self, kind: str, raw: dict[str, Any]) -> None:
        self.kind = kind
        self.raw = raw
        self.parts: list[str] = []  # text or thinking (when kept), or a tool's input JSON
        self.citations: list[dict[str, Any]] = []
        self.shown = False  # a thinking block has shown some text


class ReplyReader:
    __slots__ = (
        "_blocks", "_calls", "_current", "_earlier", "container", "finished", "keep", "kept",
        "kept_bytes", "stop_details", "stop_reason",
    )

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.kept: list[dict[str, Any]] = []  # the reply's finished blocks, when kept
        self.kept_bytes = 0
        self._blocks: dict[int, _Block] = {}
        self._calls: dict[str, Call] = {}  # server tools' and MCP calls, by id
        # Usage counters: of the finished requests, and of the one streaming now.
        self._earlier = dict.fromkeys((*_USAGE_FIELDS, "thinking", "searches", "fetches"), 0)
        self._current = dict(self._earlier)
        self.stop_reason: str | None = None
        self.stop_details: dict[str, Any] | None = None
        # {"id", "expires_at"}: the container code execution ran in, as the last request
        # named it.
        self.container: dict[str, Any] | None = None
        self.finished = False  # this request's message_stop arrived

    def next_request(self) -> None:
        """Before a continuation: bank the finished request's usage."""
        for key, value in self._current.items():
            self._earlier[key] += value
            self._current[key] = 0
        self._blocks.clear()
        self.stop_reason = None
        self.stop_details = None
        self.finished = False

    @property
    def searches(self) -> int:
        return self._earlier["searches"] + self._current["searches"]

    @property
    def fetches(self) -> int:
        """Web fetches made so far, as web search's `searches`."""
        return self._earlier["fetches"] + self._current["fetches"]

    def usage(self) -> Usage:
        total = {key: value + self._current[key] for key, value in self._earlier.items()}
        return Usage(
            total["input_tokens"], total["output_tokens"], self.stop_reason,
            cache_creation_input_tokens=total["cache_creation_input_tokens"],
            cache_read_input_tokens=total["cache_read_input_tokens"],
            thinking_tokens=total["thinking"], web_search_requests=total["searches"],
            stop_details=self.stop_details, web_fetch_requests=total["fetches"],
        )

    def keep_text(self, index: int, text: str) -> None:
        """A text delta of a kept reply (the provider yields the text itself)."""
        block = self._blocks.get(index)
        if block is not None:
            block.parts.append(text)

    def on_event(self, event: dict[str, Any]) -> Sequence[Item]:
        kind = event["type"]
        if kind == "content_block_delta":
            return self._delta(event["index"], event["delta"])
        if kind == "content_block_start":
            return self._start(event["index"], event["content_block"])
        if kind == "content_block_stop":
            return self._stop(event["index"])
        if kind == "message_start":
            self._count(event["message"]["usage"])
            return (self.usage(),)  # the input is known now: a cancel can still report it
        if kind == "message_delta":
            delta = event["delta"]
            self.stop_reason = delta.get("stop_reason")
            self.stop_details = _refusal(delta.get("stop_details"))
            container = delta.get("container")
            if isinstance(container, dict) and isinstance(container.get("id"), str):
                self.container = {"id": container["id"],
                                  "expires_at": container.get("expires_at")}
            self._count(event["usage"])
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":  # mid-stream, e.g. overloaded_error
            error = event.get("error") or {}
            raise ProviderError(
                str(error.get("type") or "api_error"),
                str(error.get("message") or "Claude reported an error."),
            )
        return _NOTHING

    def _count(self, usage: dict[str, Any]) -> None:
        """Anthropic's counts are cumulative within a request; a field left out keeps
        its earlier value (message_start's)."""
        current = self._current
        for key in _USAGE_FIELDS:
            value = usage.get(key)
            if isinstance(value, int):
                current[key] = value
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            current["thinking"] = details["thinking_tokens"]
        tools = usage.get("server_tool_use")
        if isinstance(tools, dict):
            for key, name in (("searches", "web_search_requests"),
                              ("fetches", "web_fetch_requests")):
                if isinstance(tools.get(name), int):
                    current[key] = tools[name]

    def _start(self, index: int, raw: dict[str, Any]) -> Sequence[Item]:
        kind = raw["type"]
        # A compaction's block is the reader's to send back: always whole.
        block = _Block(kind, dict(raw) if self.keep or kind == "compaction" else raw)
        self._blocks[index] = block
        if kind == "text":
            text = raw.get("text")
            if text:  # the API starts text empty; a start that holds some is still text
                if self.keep:
                    block.parts.append(text)
                return (text,)
        elif kind == "thinking":
            thinking = raw.get("thinking")
            if thinking:
                block.shown = True
                block.parts.append(thinking)
                return (Event("thinking", thinking),)
        elif kind == "redacted_thinking":
            return (Event("thinking_hidden", {"reason": "redacted"}),)
        elif kind == "tool_use":  # an operator's tool: its call streams as it forms
            return (Event("tool_start", {"id": raw["id"], "name": raw["name"]}),)
        elif kind in ("server_tool_use", "mcp_tool_use"):  # its result needs its name
            server = raw.get("server_name")
            self._calls[str(raw["id"])] = Call(str(raw["name"]), {},
                                               None if server is None else str(server))
        elif kind in RESULT_BLOCKS:
            call = self._calls.get(str(raw["tool_use_id"]))
            return (Event("tool_result", tool_result(raw, call)),)
        elif kind == "container_upload":
            return (Event("file", {"file_id": raw["file_id"]}),)
        elif kind not in _KNOWN_BLOCKS:  # a block this server does not know: not dropped
            return (unknown_block("block", kind, raw),)
        return _NOTHING

    def _delta(self, index: int, delta: dict[str, Any]) -> Sequence[Item]:
        block = self._blocks.get(index)
        if block is None:
            return _NOTHING
        kind = delta["type"]
        if kind == "thinking_delta":
            thinking = delta["thinking"]
            if not thinking:
                return _NOTHING
            block.shown = True
            if self.keep:
                block.parts.append(thinking)
            return (Event("thinking", thinking),)
        if kind == "citations_delta":
            block.citations.append(delta["citation"])
        elif kind == "input_json_delta":
            partial = delta["partial_json"]
            block.parts.append(partial)
            if block.kind == "tool_use" and partial:
                return (Event("tool_input", {"id": block.raw["id"], "delta": partial}),)
        elif kind == "signature_delta":
            if self.keep:
                block.raw["signature"] = delta["signature"]
        elif kind == "compaction_delta":
            # Each delta holds the whole value of what it names (as the SDK reads it).
            for key in ("content", "encrypted_content"):
                if key in delta:
                    block.raw[key] = delta[key]
        elif kind not in _KNOWN_DELTAS and block.kind in _KNOWN_BLOCKS:
            # A new delta of a known block; an unknown block's deltas are its own business.
            return (unknown_block("delta", kind, delta),)
        return _NOTHING

    def _stop(self, index: int) -> Sequence[Item]:
        block = self._blocks.pop(index, None)
        if block is None:
            return _NOTHING
        items: Sequence[Item] = _NOTHING
        raw = block.raw
        if block.kind == "text":
            items = [Event("citation", _citation(c)) for c in block.citations]
            if self.keep:
                raw["text"] = "".join(block.parts)
                if block.citations:
                    raw["citations"] = block.citations
        elif block.kind == "thinking":
            if not block.shown:
                items = (Event("thinking_hidden", {"reason": "omitted"}),)
            if self.keep:
                raw["thinking"] = "".join(block.parts)
        elif block.kind in _CALLS:
            joined = "".join(block.parts)
            tool_input = json.loads(joined) if joined else raw.get("input") or {}
            if self.keep:
                raw["input"] = tool_input
            call: dict[str, Any] = {"id": raw["id"], "name": raw["name"], "input": tool_input}
            known = self._calls.get(str(raw["id"]))
            if known is not None:
                known.input = tool_input
            if block.kind == "mcp_tool_use":
                call["server_name"] = raw.get("server_name")
            items = (Event("tool", call),)
        elif block.kind == "compaction":
            items = (Event("compaction", {"content": raw.get("content"), "block": dict(raw)}),)
        if self.keep:
            self.kept.append(raw)
            self.kept_bytes += len(json.dumps(raw, ensure_ascii=False))
            if self.kept_bytes > MAX_KEPT_BYTES:  # too much to resend: this reply ends here
                self.keep = False
                self.kept.clear()
        return items


def unknown_block(kind: str, type_name: str, raw: dict[str, Any]) -> Event:
    """The generic `block` event for a content block or delta of a type this server does
    not know (docs/protocol.md, "Events"): its JSON, without what is encrypted or opaque,
    and at most MAX_UNKNOWN_BYTES of it."""
    shown = _readable(raw)
    if len(json.dumps(shown, ensure_ascii=False)) > MAX_UNKNOWN_BYTES:
        shown = {"type": type_name, "truncated": True}
    return Event("block", {"kind": kind, "type": type_name, "data": shown})


def _readable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _readable(item) for key, item in value.items()
                if key not in _OPAQUE_KEYS and "encrypted" not in key}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


# Per location type, the fields of a document citation's range, as the API names them.
DOCUMENT_RANGES: Final = {
    "char_location": ("start_char_index", "end_char_index"),
    "page_location": ("start_page_number", "end_page_number"),
    "content_block_location": ("start_block_index", "end_block_index"),
}


def _citation(citation: dict[str, Any]) -> dict[str, Any]:
    """The parts a reader can use: where it points and what it quotes (never the
    encrypted index). A document's citation has no URL: its title is the document's,
    and it says which document (its index among the request's documents) and where in
    it, with the API's own field names (docs/protocol.md, "Events")."""
    kind = citation.get("type")
    if kind in DOCUMENT_RANGES:
        start, end = DOCUMENT_RANGES[kind]
        return {
            "url": None,
            "title": citation.get("document_title"),
            "cited_text": str(citation.get("cited_text") or ""),
            "type": kind,
            "document_index": citation.get("document_index"),
            start: citation.get(start),
            end: citation.get(end),
        }
    return {
        "url": citation.get("url"),
        "title": citation.get("title", citation.get("document_title")),
        "cited_text": str(citation.get("cited_text") or ""),
    }


def _refusal(details: object) -> dict[str, Any] | None:
    if not isinstance(details, dict) or details.get("type") != "refusal":
        return None
    return {
        "type": "refusal",
        "category": details.get("category"),
        "explanation": details.get("explanation"),
    }
