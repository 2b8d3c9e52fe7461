"""The one seam between the service and whoever writes the reply.

A provider turns a `GenerationRequest` into an async iterator of items:

- `str`: one text delta (a `message` event). Text is nearly every item of a reply, so it
  stays a plain string: the relay's hot path does no more than frame it.
- `Event`: any other wire event (`thinking`, `thinking_hidden`, `tool_start`, `tool_input`,
  `tool`, `tool_result`, `citation`, `compaction`, `file`, `container`, `turn`), already in
  the shape docs/protocol.md, "Events" gives it. A provider offered tools
  (`GenerationRequest.tools`) ends a reply that stops for `tool_use` with a `turn` event:
  the assistant message exactly as the API returned it, which the tool loop
  (tools/loop.py) sends back with the tools' results.
- `Usage`: one as soon as the input is counted, the last one final.

Handlers, generations and the store never know which provider they have. Closing the
generator
(`aclose()`, or task cancellation) must close the upstream request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..errors import ProviderError
from ..option_values import MIN_THINKING_BUDGET

__all__ = [
    "Block", "ChatMessage", "Event", "GenerationRequest", "Item", "Provider", "ProviderError",
    "Role", "Thinking", "Usage",
]

Role = Literal["user", "assistant"]
# "off", "adaptive" (Claude decides how much to think), or a budget of thinking tokens.
Thinking = Literal["off", "adaptive"] | int


# A content block in the Messages API's own shape, checked by validation.py.
Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str | tuple[Block, ...]

    @property
    def text(self) -> str:
        """The message's text: the string, or its text blocks joined."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(b["text"] for b in self.content if b.get("type") == "text")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    system: str | None = None
    thinking: Thinking = "off"
    web_search: int = 0  # the most searches this reply may make; 0: no web search
    # The operator's tool definitions, in the API's shape (tools/definitions.py).
    tools: tuple[Block, ...] = ()
    web_fetch: int = 0  # the most page fetches this reply may make; 0: no web fetch
    code_execution: bool = False
    tool_search: bool = False  # the operator's tools are found by search, deferred
    container: str | None = None  # code execution's container from an earlier reply
    # The API's `output_config` (effort, a structured output's format), or None.
    output_config: Block | None = None
    # The operator's remote MCP servers, in the API's shape (tokens included).
    mcp_servers: tuple[Block, ...] = ()
    compaction: bool = False  # the API's context management compacts older turns


@dataclass(slots=True)
class Event:
    """A wire event other than `message`: its name and its JSON-ready data."""

    name: str
    data: object


@dataclass(frozen=True, slots=True)
class Usage:
    """What a reply cost, summed over its upstream requests. `input_tokens` is the input
    read at full price; the cache's share is in the two cache fields, as Anthropic counts."""

    input_tokens: int
    output_tokens: int
    stop_reason: str | None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    thinking_tokens: int = 0
    web_search_requests: int = 0
    # {"type": "refusal", "category", "explanation"} when Claude refused, else None.
    stop_details: dict[str, Any] | None = None
    web_fetch_requests: int = 0

    def plus(self, later: Usage) -> Usage:
        """This request's usage and a later request's of the same reply, summed; the stop
        is the later one's."""
        return Usage(
            self.input_tokens + later.input_tokens, self.output_tokens + later.output_tokens,
            later.stop_reason,
            self.cache_creation_input_tokens + later.cache_creation_input_tokens,
            self.cache_read_input_tokens + later.cache_read_input_tokens,
            self.thinking_tokens + later.thinking_tokens,
            self.web_search_requests + later.web_search_requests,
            later.stop_details,
            self.web_fetch_requests + later.web_fetch_requests,
        )

    def wire(self) -> dict[str, Any]:
        """The `usage` event's data: every key, always (docs/protocol.md, "Events")."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "stop_reason": self.stop_reason,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "thinking_tokens": self.thinking_tokens,
            "web_search_requests": self.web_search_requests,
            "web_fetch_requests": self.web_fetch_requests,
            "stop_details": self.stop_details,
        }


Item = str | Event | Usage


def bounds_left(request: GenerationRequest, output_tokens: int) -> tuple[int, Thinking] | None:
    """A reply's next request's max_tokens and thinking, when the reply has already spent
    `output_tokens`: a reply's max_tokens bounds the reply, however many requests it takes.
    None when too little is left to make another."""
    left = request.max_tokens - output_tokens
    if left < 1:
        return None
    thinking = request.thinking
    if isinstance(thinking, int) and thinking >= left:
        if left - 1 < MIN_THINKING_BUDGET:
            return None
        thinking = left - 1
    return left, thinking


class Provider(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Item, None]:
        """Text deltas as they arrive, other events, and Usage updates (the last is
        final); raises ProviderError."""
        ...

    async def close(self) -> None:
        """Release connections held across requests."""
        ...
