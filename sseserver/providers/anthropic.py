"""Claude through the official SDK (`AsyncAnthropic`), streaming.

The SDK keeps what it is good at: auth headers, retries before the first byte, typed HTTP
errors. The per-delta path is ours: the SDK's raw streaming response
(`with_streaming_response`) read by `anthropic_events`, which parses each event's JSON once
and builds no models; a text delta is yielded here as the string it is, and every other
event goes to `ReplyReader` (anthropic_reply.py). Leaving the `async with` (which task
cancellation does) closes the HTTP response, so the connection to the Messages API is
closed and no more tokens are generated or billed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import anthropic
import httpx2

from ..option_values import PromptCache
from .anthropic_events import anthropic_events
from .anthropic_reply import ReplyReader
from .base import GenerationRequest, Item, ProviderError, Thinking

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
# A turn that pauses (pause_turn) is continued at most this many times: one reply is at
# most this many upstream requests plus one.
MAX_CONTINUATIONS: Final = 5
# The basic web search tool: every model with web search has it (the later versions add
# filtering by code execution, which brings blocks of its own).
WEB_SEARCH_TOOL: Final = "web_search_20250305"


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self, api_key: str, base_url: str | None = None, max_retries: int = 2,
        prompt_cache: PromptCache = "5m",
    ) -> None:
        self._api_key = api_key
        self._cache_control = (
            None if prompt_cache == "off" else {"type": "ephemeral", "ttl": prompt_cache}
        )
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries,
            http_client=anthropic.DefaultAioHttpClient(),
        )

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "thinking": _thinking(request.thinking),
        }
        if request.system:
            params["system"] = request.system
        if request.web_search:
            params["tools"] = [_web_search_tool(request.web_search)]
        if self._cache_control is not None:
            # Automatic caching: the API puts the breakpoint on the request's last block,
            # so everything before it (system, the history, the new message) is the
            # prefix the next turn reads from the cache (docs/protocol.md, "Thinking,
            # tools and caching").
            params["cache_control"] = self._cache_control
        return params

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Item, None]:
        params = self._params(request)
        # Blocks are kept for a continuation only when one can happen: pause_turn comes
        # only from server tools, and web search is the one this server turns on.
        reader = ReplyReader(keep=request.web_search > 0)
        on_event = reader.on_event
        create = self._client.messages.with_streaming_response.create
        continuations = 0
        try:
            while True:
                keeping = reader.keep
                # Leaving this block (a cancel included) closes this upstream request.
                async with create(stream=True, **params) as response:
                    async for event in anthropic_events(response.iter_bytes()):
                        # Text first and inline: nearly every event is a text delta.
                        if event["type"] == "content_block_delta":
                            delta = event["delta"]
                            if delta["type"] == "text_delta":
                                text = delta["text"]
                                if text:
                                    if keeping:
                                        reader.keep_text(event["index"], text)
                                    yield text
                                continue
                        for item in on_event(event):
                            yield item
                if not reader.finished:  # the body ended cleanly but before message_stop
                    raise ProviderError(
                        "upstream_unavailable", "The reply from Claude ended early."
                    )
                searches_left = request.web_search - reader.searches
                if (reader.stop_reason != "pause_turn" or continuations == MAX_CONTINUATIONS
                        or not reader.keep or searches_left < 1):
                    break
                # Continue the paused turn: the reply so far goes back as the assistant
                # turn, with what is left of this reply's searches.
                continuations += 1
                params = params | {
                    "messages": [*params["messages"][: len(request.messages)],
                                 {"role": "assistant", "content": list(reader.kept)}],
                    "tools": [_web_search_tool(searches_left)],
                }
                reader.next_request()
        except ProviderError as exc:
            raise self._safe_error(exc.type, exc.message) from None
        except (AttributeError, KeyError, TypeError, ValueError):  # a shape not as documented
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
        yield reader.usage()

    def _safe_error(self, error_type: str, message: str) -> ProviderError:
        """Anthropic's own message, shortened, with the key scrubbed should it ever appear."""
        message = message.replace(self._api_key, "[redacted]")[:_MAX_MESSAGE_CHARS]
        return ProviderError(error_type, message)

    async def close(self) -> None:
        await self._client.close()


def _thinking(thinking: Thinking) -> dict[str, Any]:
    """The API's thinking parameter. Thinking is asked for `summarized` because some
    models otherwise omit its text, which the reader would then wait through unseen."""
    if thinking == "off":
        return {"type": "disabled"}
    if thinking == "adaptive":
        return {"type": "adaptive", "display": "summarized"}
    return {"type": "enabled", "budget_tokens": thinking, "display": "summarized"}


def _web_search_tool(max_uses: int) -> dict[str, Any]:
    return {"type": WEB_SEARCH_TOOL, "name": "web_search", "max_uses": max_uses}
