"""Claude through the official SDK's async streaming (`AsyncAnthropic().messages.stream`).

The SDK keeps what it is good at: auth headers, retries before the first byte, typed errors.
Leaving the `async with` (which task cancellation does) closes the HTTP response, so the
connection to the Messages API is closed and no more tokens are generated or billed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import anthropic
import httpx2

from .base import GenerationRequest, ProviderError, Usage

# Anthropic's error type for an HTTP status, when a body does not name one.
_TYPE_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_MAX_MESSAGE_CHARS: Final = 300


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None = None, max_retries: int = 2) -> None:
        self._api_key = api_key
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Usage, None]:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        try:
            async with self._client.messages.stream(**params) as upstream:
                async for event in upstream:
                    if event.type == "text":
                        yield event.text
                    elif event.type == "message_start":
                        # Known now, so a cancelled reply can still report its input.
                        yield Usage(event.message.usage.input_tokens, 0, None)
                final = await upstream.get_final_message()
        except anthropic.APIStatusError as exc:
            error_type = exc.type or _TYPE_BY_STATUS.get(exc.status_code, "api_error")
            raise self._safe_error(error_type, exc.api_message or str(exc)) from None
        except (anthropic.APITimeoutError, httpx2.TimeoutException):
            raise ProviderError("upstream_timeout", "Claude did not answer in time.") from None
        except (anthropic.APIConnectionError, httpx2.TransportError):
            raise ProviderError(
                "upstream_unavailable", "The connection to Claude was lost."
            ) from None
        yield Usage(
            input_tokens=final.usage.input_tokens,
            output_tokens=final.usage.output_tokens,
            stop_reason=final.stop_reason,
        )

    def _safe_error(self, error_type: str, message: str) -> ProviderError:
        """Anthropic's own message, shortened, with the key scrubbed should it ever appear."""
        message = message.replace(self._api_key, "[redacted]")[:_MAX_MESSAGE_CHARS]
        return ProviderError(error_type, message)

    async def close(self) -> None:
        await self._client.close()
