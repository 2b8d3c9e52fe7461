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

from ..errors import ProviderError

__all__ = ["ChatMessage", "GenerationRequest", "Provider", "ProviderError", "Role", "Usage"]

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


class Provider(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Usage, None]:
        """Text deltas as they arrive, with Usage updates (the last is final);
        raises ProviderError."""
        ...

    async def close(self) -> None:
        """Release connections held across requests."""
        ...
