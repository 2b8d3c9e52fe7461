"""The one seam between the service and whoever writes the reply.

A provider turns a `GenerationRequest` into an async iterator of text deltas and
`Usage` updates: one as soon as the input is counted, the last one final. Handlers and
the stream registry never know which provider they have. Closing the generator (`aclose()`,
or task cancellation) must close the upstream request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    system: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    stop_reason: str | None


class ProviderError(Exception):
    """An upstream failure, already made safe to show a user (no keys, no traces).

    `type` keeps Anthropic's error type where there is one (`overloaded_error`, ...),
    else `upstream_unavailable` or `upstream_timeout` (SPEC 4).
    """

    def __init__(self, type: str, message: str) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message


class Provider(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Usage, None]:
        """Text deltas as they arrive, with Usage updates (the last is final);
        raises ProviderError."""
        ...

    async def close(self) -> None:
        """Release connections held across requests."""
        ...
