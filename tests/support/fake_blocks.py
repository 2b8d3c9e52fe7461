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
        text = json.dumps(self.input, ensure_ascii=False)
        size = -(-len(text) // self.pieces)
        for start in range(0, len(text), size):
            yield "delta", {"type": "input_json_delta", "partial_json": text[start:start + size]}


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
        text = json.dumps(self.input, ensure_ascii=False)
        size = -(-len(text) // self.pieces)
        for start in range(0, len(text), size):
            yield "delta", {"type": "input_json_delta", "partial_json": text[start:start + size]}


@dataclass(frozen=True)
class WebSearchResult:
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

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "start", self.content()


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


Block = (
    Text | Thinking | RedactedThinking | ServerToolUse | ToolUse | WebSearchResult | UnknownBlock
)


def searches(blocks: Sequence[Block | UnknownEvent]) -> int:
    return sum(isinstance(b, ServerToolUse) and b.name == "web_search" for b in blocks)


def output_text(blocks: Sequence[Block | UnknownEvent]) -> list[str]:
    """What the model wrote (text, thinking, tool input), for a token estimate."""
    written: list[str] = []
    for block in blocks:
        if isinstance(block, Text | Thinking):
            written.extend(block.chunks)
        elif isinstance(block, ServerToolUse | ToolUse):
            written.append(json.dumps(block.input))
    return written


def thinking_text(blocks: Sequence[Block | UnknownEvent]) -> list[str]:
    return [chunk for b in blocks if isinstance(b, Thinking) for chunk in b.chunks]
