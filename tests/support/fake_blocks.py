"""The content blocks a fake reply can hold, each rendered as Anthropic streams it.

Every shape here is checked against the installed SDK's own types by
``tests/test_fake_anthropic.py``; the stream of each block is:

- ``Text``: ``content_block_start`` ``{"type": "text", "text": ""}``, one ``citations_delta``
  per citation (before the text it supports, as the API sends them), one ``text_delta``
  per chunk, ``content_block_stop``.
- ``Thinking``: start ``{"type": "thinking", "thinking": "", "signature": ""}``, one
  ``thinking_delta`` per chunk (none when the display is omitted), one ``signature_delta``,
  stop.
- ``RedactedThinking``: start holding the whole block (``data``), stop.
- ``ServerToolUse``: start ``{"type": "server_tool_use", "id", "name", "input": {}}``, one
  ``input_json_delta`` per piece of the input's JSON, stop.
- ``ToolUse``: a call of one of the request's own tools: start ``{"type": "tool_use", "id",
  "name", "input": {}}``, one ``input_json_delta`` per piece of the input's JSON, stop.
- ``WebSearchResult``: start holding the whole result (a list of ``web_search_result`` or a
  ``web_search_tool_result_error``), stop.
- ``WebFetchResult``: start holding the whole ``web_fetch_tool_result`` (a
  ``web_fetch_result`` with the fetched ``document``, or a ``web_fetch_tool_result_error``),
  stop. The code execution results (``CodeExecutionResult``, ``BashResult``,
  ``TextEditorResult``), ``ToolSearchResult``, ``McpToolResult`` and ``ContainerUpload``
  arrive the same way: whole at their start.
- ``McpToolUse``: like ``ServerToolUse``, with the MCP server's name. ``McpToolListing``
  (the tools an MCP server listed) arrives whole at its start.
- ``Compaction``: start ``{"type": "compaction", "content": null, "signature"}``, one
  ``compaction_delta`` holding the whole summary and the encrypted content (the API does not
  stream a summary piece by piece, and the SDK's accumulator takes each delta's ``content``
  as the whole), stop.
- ``UnknownBlock``: a block type and a delta type the SDK does not know (the API may add
  some); ``UnknownEvent``: an event type it does not know, between blocks.

``content()`` is the block as the API returns it in a whole message, which is also what a
client sends back to continue a paused turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

SIGNATURE: Final = "EqQBCkYIBxgCKkD" + "sIgNaTuRe" * 12 + "=="
ENCRYPTED: Final = "Eo8DCioIBxgCIiQ" + "eNcRyPtEd" * 12 + "=="
REDACTED: Final = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT" + "rEdAcTeD" * 8 + "=="


def web_result(title: str, url: str, page_age: str | None = None) -> dict[str, Any]:
    """One ``web_search_result`` as the API sends it (the content is encrypted)."""
    return {"type": "web_search_result", "title": title, "url": url,
            "encrypted_content": ENCRYPTED, "page_age": page_age}


def web_citation(url: str, title: str | None, cited_text: str) -> dict[str, Any]:
    """One ``web_search_result_location`` citation as the API sends it."""
    return {"type": "web_search_result_location", "url": url, "title": title,
            "cited_text": cited_text, "encrypted_index": "Eo8BCioIBxgC" + "iNdEx" * 4}


def _input_pieces(
    tool_input: dict[str, Any], pieces: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A call's input JSON as the API streams it: ``input_json_delta``s of its text."""
    text = json.dumps(tool_input, ensure_ascii=False)
    size = -(-len(text) // pieces)
    for start in range(0, len(text), size):
        yield "delta", {"type": "input_json_delta", "partial_json": text[start:start + size]}


class _WholeAtStart:
    """A block the API sends whole in its ``content_block_start``, with no delta."""

    def content(self) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", self.content()


@dataclass(frozen=True)
class Text:
    chunks: Sequence[str]
    citations: Sequence[dict[str, Any]] = ()
    unknown_delta_after: int | None = None
    """Send a delta of an unknown type after this many chunks."""

    def content(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "text", "text": "".join(self.chunks)}
        if self.citations:
            block["citations"] = list(self.citations)
        return block

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", {"type": "text", "text": ""}
        for citation in self.citations:
            yield "delta", {"type": "citations_delta", "citation": citation}
        for number, chunk in enumerate(self.chunks):
            if number == self.unknown_delta_after:
                yield "delta", {"type": "future_delta", "payload": "ignore me"}
            yield "delta", {"type": "text_delta", "text": chunk}


@dataclass(frozen=True)
class Thinking:
    chunks: Sequence[str]
    """Empty: thinking whose display is omitted (only the signature comes)."""
    signature: str = SIGNATURE

    def content(self) -> dict[str, Any]:
        return {"type": "thinking", "thinking": "".join(self.chunks),
                "signature": self.signature}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", {"type": "thinking", "thinking": "", "signature": ""}
        for chunk in self.chunks:
            yield "delta", {"type": "thinking_delta", "thinking": chunk}
        yield "delta", {"type": "signature_delta", "signature": self.signature}


@dataclass(frozen=True)
class RedactedThinking:
    data: str = REDACTED

    def content(self) -> dict[str, Any]:
        return {"type": "redacted_thinking", "data": self.data}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", self.content()


@dataclass(frozen=True)
class ServerToolUse:
    id: str
    input: dict[str, Any]
    name: str = "web_search"
    pieces: int = 3
    """The input's JSON is sent in this many ``input_json_delta`` pieces."""

    def content(self) -> dict[str, Any]:
        return {"type": "server_tool_use", "id": self.id, "name": self.name,
                "input": self.input}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", {"type": "server_tool_use", "id": self.id, "name": self.name,
                        "input": {}}
        yield from _input_pieces(self.input, self.pieces)


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]
    pieces: int = 3
    """The input's JSON is sent in this many ``input_json_delta`` pieces."""

    def content(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": self.input}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", {"type": "tool_use", "id": self.id, "name": self.name, "input": {}}
        yield from _input_pieces(self.input, self.pieces)


@dataclass(frozen=True)
class WebSearchResult(_WholeAtStart):
    tool_use_id: str
    results: Sequence[dict[str, Any]] = ()
    error_code: str | None = None
    """Set: the search failed with this code (``max_uses_exceeded``, ...)."""

    def content(self) -> dict[str, Any]:
        content: object = list(self.results)
        if self.error_code is not None:
            content = {"type": "web_search_tool_result_error", "error_code": self.error_code}
        return {"type": "web_search_tool_result", "tool_use_id": self.tool_use_id,
                "content": content}


@dataclass(frozen=True)
class UnknownBlock:
    data: dict[str, Any] = field(default_factory=lambda: {"type": "future_block", "x": 1})

    def content(self) -> dict[str, Any]:
        return dict(self.data)

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", dict(self.data)
        yield "delta", {"type": "future_delta", "payload": "ignore me"}


@dataclass(frozen=True)
class UnknownEvent:
    """Not a block: an event of a type the API may add, sent between blocks."""

    name: str = "future_event"


@dataclass(frozen=True)
class WebFetchResult(_WholeAtStart):
    tool_use_id: str
    url: str
    title: str | None = None
    retrieved_at: str = "2026-12-06T12:00:00Z"
    error_code: str | None = None
    """Set: the fetch failed with this code (``url_not_accessible``, ...)."""
    text: str = "The fetched page, as plain text."

    def content(self) -> dict[str, Any]:
        content: dict[str, Any]
        if self.error_code is not None:
            content = {"type": "web_fetch_tool_result_error", "error_code": self.error_code}
        else:
            document: dict[str, Any] = {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": self.text},
                "citations": {"enabled": False},
            }
            if self.title is not None:
                document["title"] = self.title
            content = {"type": "web_fetch_result", "url": self.url, "content": document,
                       "retrieved_at": self.retrieved_at}
        return {"type": "web_fetch_tool_result", "tool_use_id": self.tool_use_id,
                "content": content}


def _run_result(prefix: str, tool_use_id: str, body: dict[str, Any],
                error_code: str | None) -> dict[str, Any]:
    content = body if error_code is None else {"type": f"{prefix}_tool_result_error",
                                                 "error_code": error_code}
    return {"type": f"{prefix}_tool_result", "tool_use_id": tool_use_id, "content": content}


@dataclass(frozen=True)
class CodeExecutionResult(_WholeAtStart):
    tool_use_id: str
    stdout: str = ""
    stderr: str = ""
    return_code: int = 0
    file_ids: Sequence[str] = ()
    """Files the run created (``code_execution_output``)."""
    error_code: str | None = None
    encrypted: bool = False
    """The API's ``encrypted_code_execution_result``: stdout encrypted (the code called web
    search)."""

    def content(self) -> dict[str, Any]:
        files = [{"type": "code_execution_output", "file_id": f} for f in self.file_ids]
        body: dict[str, Any] = {"type": "code_execution_result", "stdout": self.stdout,
                                "stderr": self.stderr, "return_code": self.return_code,
                                "content": files}
        if self.encrypted:
            body = {"type": "encrypted_code_execution_result", "encrypted_stdout": ENCRYPTED,
                    "stderr": self.stderr, "return_code": self.return_code, "content": files}
        return _run_result("code_execution", self.tool_use_id, body, self.error_code)


@dataclass(frozen=True)
class BashResult(_WholeAtStart):
    tool_use_id: str
    stdout: str = ""
    stderr: str = ""
    return_code: int = 0
    file_ids: Sequence[str] = ()
    error_code: str | None = None

    def content(self) -> dict[str, Any]:
        files = [{"type": "bash_code_execution_output", "file_id": f} for f in self.file_ids]
        body = {"type": "bash_code_execution_result", "stdout": self.stdout,
                "stderr": self.stderr, "return_code": self.return_code, "content": files}
        return _run_result("bash_code_execution", self.tool_use_id, body, self.error_code)


@dataclass(frozen=True)
class TextEditorResult(_WholeAtStart):
    tool_use_id: str
    result: dict[str, Any] = field(default_factory=dict)
    """The result block, its ``type`` included (``text_editor_code_execution_view_result``,
    ``_create_result`` or ``_str_replace_result``)."""
    error_code: str | None = None
    error_message: str | None = None

    def content(self) -> dict[str, Any]:
        prefix = "text_editor_code_execution"
        block = _run_result(prefix, self.tool_use_id, dict(self.result), self.error_code)
        if self.error_code is not None and self.error_message is not None:
            block["content"]["error_message"] = self.error_message
        return block


@dataclass(frozen=True)
class ToolSearchResult(_WholeAtStart):
    tool_use_id: str
    tool_names: Sequence[str] = ()
    error_code: str | None = None

    def content(self) -> dict[str, Any]:
        body = {"type": "tool_search_tool_search_result", "tool_references": [
            {"type": "tool_reference", "tool_name": name} for name in self.tool_names]}
        return _run_result("tool_search", self.tool_use_id, body, self.error_code)


@dataclass(frozen=True)
class McpToolUse:
    id: str
    name: str
    server_name: str
    input: dict[str, Any]
    pieces: int = 3

    def content(self) -> dict[str, Any]:
        return {"type": "mcp_tool_use", "id": self.id, "name": self.name,
                "server_name": self.server_name, "input": self.input}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", self.content() | {"input": {}}
        yield from _input_pieces(self.input, self.pieces)


@dataclass(frozen=True)
class McpToolListing(_WholeAtStart):
    server_name: str
    tool_names: Sequence[str] = ("echo",)

    def content(self) -> dict[str, Any]:
        return {"type": "mcp_tool_listing", "mcp_server_name": self.server_name, "tools": [
            {"name": name, "description": f"{name} things",
             "input_schema": {"type": "object", "properties": {}}}
            for name in self.tool_names]}


@dataclass(frozen=True)
class McpToolResult(_WholeAtStart):
    tool_use_id: str
    output: str | Sequence[str] = ""
    """The block's ``content`` (a name ``content()`` takes): a string as is, or the texts
    of a list of ``text`` blocks."""
    is_error: bool = False

    def content(self) -> dict[str, Any]:
        content: object = self.output
        if not isinstance(self.output, str):
            content = [{"type": "text", "text": text} for text in self.output]
        return {"type": "mcp_tool_result", "tool_use_id": self.tool_use_id,
                "is_error": self.is_error, "content": content}


@dataclass(frozen=True)
class Compaction:
    chunks: Sequence[str] | None
    """The summary's text; None: a compaction that failed (content null)."""
    encrypted_content: str = ENCRYPTED
    signature: str = SIGNATURE

    def content(self) -> dict[str, Any]:
        summary = None if self.chunks is None else "".join(self.chunks)
        return {"type": "compaction", "content": summary,
                "encrypted_content": self.encrypted_content, "signature": self.signature}

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        whole = self.content()
        yield "start", {"type": "compaction", "content": None, "signature": self.signature}
        yield "delta", {"type": "compaction_delta", "content": whole["content"],
                        "encrypted_content": self.encrypted_content}


@dataclass(frozen=True)
class ContainerUpload(_WholeAtStart):
    file_id: str

    def content(self) -> dict[str, Any]:
        return {"type": "container_upload", "file_id": self.file_id}


Block = (
    Text | Thinking | RedactedThinking | ServerToolUse | ToolUse | WebSearchResult | UnknownBlock
    | WebFetchResult | CodeExecutionResult | BashResult | TextEditorResult | ToolSearchResult
    | McpToolUse | McpToolResult | McpToolListing | Compaction | ContainerUpload
)
BETA_BLOCKS: Final = (McpToolUse, McpToolResult, McpToolListing, Compaction)
"""Blocks only the SDK's beta types know."""


def searches(blocks: Sequence[Block | UnknownEvent]) -> int:
    return sum(isinstance(b, ServerToolUse) and b.name == "web_search" for b in blocks)


def fetches(blocks: Sequence[Block | UnknownEvent]) -> int:
    return sum(isinstance(b, ServerToolUse) and b.name == "web_fetch" for b in blocks)


def file_ids(blocks: Sequence[Block | UnknownEvent]) -> list[str]:
    """The files a reply names: those its code runs created, and those uploaded to its
    container."""
    named: list[str] = []
    for block in blocks:
        if isinstance(block, CodeExecutionResult | BashResult):
            named.extend(block.file_ids)
        elif isinstance(block, ContainerUpload):
            named.append(block.file_id)
    return named


def output_text(blocks: Sequence[Block | UnknownEvent]) -> list[str]:
    """What the model wrote (text, thinking, tool input), for a token estimate."""
    written: list[str] = []
    for block in blocks:
        if isinstance(block, Text | Thinking):
            written.extend(block.chunks)
        elif isinstance(block, ServerToolUse | ToolUse | McpToolUse):
            written.append(json.dumps(block.input))
    return written


def thinking_text(blocks: Sequence[Block | UnknownEvent]) -> list[str]:
    return [chunk for b in blocks if isinstance(b, Thinking) for chunk in b.chunks]
