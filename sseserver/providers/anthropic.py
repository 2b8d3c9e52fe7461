"""Claude through the official SDK (`AsyncAnthropic`), streaming.

The SDK keeps what it is good at: auth headers, retries before the first byte, typed HTTP
errors. The per-delta path is ours: the SDK's raw streaming response
(`with_streaming_response`) read by `anthropic_events`, which parses each event's JSON once
and builds no models. Leaving the `async with` (which task cancellation does) closes the
HTTP response, so the connection to the Messages API is closed and no more tokens are
generated or billed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import anthropic
import httpx2

from .anthropic_events import anthropic_events
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
            api_key=api_key, base_url=base_url, max_retries=max_retries,
            http_client=anthropic.DefaultAioHttpClient(),
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Usage, None]:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        finished = False
        create = self._client.messages.with_streaming_response.create
        try:
            async with create(stream=True, **params) as response:
                async for event in anthropic_events(response.iter_bytes()):
                    kind = event["type"]
                    if kind == "content_block_delta":
                        delta = event["delta"]
                        if delta["type"] == "text_delta" and delta["text"]:
                            yield delta["text"]
                    elif kind == "message_start":
                        input_tokens = event["message"]["usage"]["input_tokens"]
                        # Known now, so a cancelled reply can still report its input.
                        yield Usage(input_tokens, 0, None)
                    elif kind == "message_delta":
                        stop_reason = event["delta"].get("stop_reason")
                        output_tokens = event["usage"]["output_tokens"]
                        input_tokens = event["usage"].get("input_tokens") or input_tokens
                    elif kind == "message_stop":
                        finished = True
                    elif kind == "error":  # mid-stream, e.g. overloaded_error
                        error = event.get("error") or {}
                        raise self._safe_error(
                            str(error.get("type") or "api_error"),
                            str(error.get("message") or "Claude reported an error."),
                        )
        except ProviderError:
            raise
        except (KeyError, TypeError, ValueError):
            unreadable = "Claude sent an event this server cannot read."
            raise ProviderError("api_error", unreadable) from None
        except anthropic.APIStatusError as exc:
            error_type = exc.type or _TYPE_BY_STATUS.get(exc.status_code, "api_error")
            raise self._safe_error(error_type, exc.api_message or str(exc)) from None
        except (anthropic.APITimeoutError, httpx2.TimeoutException):
            raise ProviderError("upstream_timeout", "Claude did not answer in time.") from None
        except (anthropic.APIConnectionError, httpx2.TransportError):
            raise ProviderError(
                "upstream_unavailable", "The connection to Claude was lost."
            ) from None
        if not finished:  # the body ended cleanly but before message_stop
            raise ProviderError("upstream_unavailable", "The reply from Claude ended early.")
        yield Usage(input_tokens, output_tokens, stop_reason)

    def _safe_error(self, error_type: str, message: str) -> ProviderError:
        """Anthropic's own message, shortened, with the key scrubbed should it ever appear."""
        message = message.replace(self._api_key, "[redacted]")[:_MAX_MESSAGE_CHARS]
        return ProviderError(error_type, message)

    async def close(self) -> None:
        await self._client.close()
