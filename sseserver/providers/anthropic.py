"""Claude through the Messages API, streaming.

The request goes out through `MessagesAPI` (messages_api.py: the API's headers, retries
before the first byte, the error's type and message). The body, read straight from
aiohttp's stream, goes to `EventReader` (anthropic_events.py), which parses each event's
JSON once, or only a text delta's string, and builds no models; a text delta is yielded
here as the string it is, and every other event goes to `ReplyReader` (anthropic_reply.py).
A code run's result that lists files waits for their names (file_names.py) while the rest
of the reply goes on.
Leaving the `async with` (which task cancellation does) closes the HTTP response, so the
connection to the Messages API is closed and no more tokens are generated or billed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncGenerator
from typing import Final

import aiohttp
from yarl import URL

from ..option_values import PromptCache
from .anthropic_events import EventReader
from .anthropic_reply import ReplyReader
from .anthropic_request import (
    continuation_params,
    may_continue,
    mcp_tokens,
    request_betas,
    request_params,
)
from .base import Event, GenerationRequest, Item, ProviderError, bounds_left
from .file_names import FileNames
from .messages_api import MessagesAPI, UpstreamStatusError
from .reachability import Reachability

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
# A read of the upstream that brings this many events or more means it sends faster than
# we read: once this read's events are handed on, the next read waits BURST_PAUSE seconds,
# so that it brings more. Each read costs a wakeup of the generation, a pass of the reader
# and a write to each subscriber whatever it brings, so fewer, fuller reads cost less per
# event. A reply at Claude's pace (one event per read) never waits (docs/performance.md,
# "What limits the rest").
BURST_EVENTS: Final = 4
BURST_PAUSE: Final = 0.002
# What the transport raises when the connection fails or times out.
UPSTREAM_TRANSPORT_ERRORS: Final = (aiohttp.ClientError, OSError, TimeoutError)
# Connecting gets at most this long, whatever --upstream-timeout.
CONNECT_TIMEOUT: Final = 5.0


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self, api_key: str, base_url: str | None = None, max_retries: int = 2,
        prompt_cache: PromptCache = "5m", timeout: float = 600.0,
    ) -> None:
        """`timeout` bounds each wait on the upstream: connecting (at most CONNECT_TIMEOUT),
        and each socket read, the answer's headers and every read of its body; it is
        aiohttp's `sock_read`, which its connection protocol applies to every read, so it
        costs no timer of ours per read."""
        self._api_key = api_key
        self._cache_control = (
            None if prompt_cache == "off" else {"type": "ephemeral", "ttl": prompt_cache}
        )
        self._api = MessagesAPI(
            api_key, base_url, max_retries=max_retries,
            connect_timeout=min(timeout, CONNECT_TIMEOUT), read_timeout=timeout,
        )
        url = URL(self._api.base_url)
        host = url.host or self._api.base_url
        self.host = host if url.explicit_port is None else f"{host}:{url.port}"
        self.reachability = Reachability(self.host)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Item, None]:
        params = request_params(request, self._cache_control)
        betas = request_betas(request)
        # Blocks are kept for a continuation only when one can happen: pause_turn comes
        # only from server tools and MCP servers, and a call of an operator's tool is
        # answered after a `turn` of the kept blocks; a compaction's block goes back too.
        reader = ReplyReader(keep=bool(
            request.web_search or request.web_fetch or request.code_execution
            or request.tool_search or request.mcp_servers or request.compaction
            or request.tools
        ))
        on_event = reader.on_event
        post = self._api.stream
        names = FileNames(self._api)
        continuations = 0
        try:
            while True:
                keeping = reader.keep
                # A kept reply needs each text's block index: only then is every event
                # parsed whole.
                feed = EventReader(fast_text=not keeping).feed
                # Leaving this block (a cancel included) closes this upstream request.
                async with post(params, betas) as response:
                    self.reachability.answered()
                    reads = response.content.iter_any().__aiter__()
                    while True:
                        try:
                            if names.busy:  # a result waits for file names
                                for named in names.ready():
                                    yield named
                                chunk = await names.next_chunk(reads)
                                if chunk is None:
                                    continue
                            else:
                                chunk = await reads.__anext__()
                        except StopAsyncIteration:
                            break
                        except BaseException:
                            names.stop_reading()
                            raise
                        events = feed(chunk)
                        for event in events:
                            # Text first and inline: nearly every event is a text delta.
                            if isinstance(event, str):
                                yield event
                                continue
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
                                if not (isinstance(item, Event) and names.hold(item)):
                                    yield item
                        if len(events) >= BURST_EVENTS and not reader.finished:
                            # The upstream is ahead of us: let its next events gather
                            # (none will after message_stop: a tool call or a pause is
                            # answered at once).
                            await asyncio.sleep(BURST_PAUSE)
                if not reader.finished:  # the body ended cleanly but before message_stop
                    raise ProviderError(
                        "upstream_unavailable", "The reply from Claude ended early."
                    )
                bounds = bounds_left(request, reader.usage().output_tokens)
                if (reader.stop_reason != "pause_turn" or continuations == MAX_CONTINUATIONS
                        or not reader.keep or bounds is None
                        or not may_continue(request, reader.searches, reader.fetches)):
                    break
                # Continue the paused turn: the reply so far goes back as the assistant
                # turn, with what is left of this reply's searches, fetches and tokens, in
                # the container its code ran in.
                continuations += 1
                params = continuation_params(params, request, reader.kept, reader.searches,
                                             reader.fetches, bounds)
                if reader.container is not None:
                    params["container"] = reader.container["id"]
                reader.next_request()
            for named in await names.flush():
                yield named
            if reader.stop_reason == "tool_use" and request.tools and reader.keep:
                yield Event("turn", {"role": "assistant", "content": list(reader.kept)})
            if reader.container is not None:
                yield Event("container", reader.container)
        except ProviderError as exc:
            raise self._safe_error(exc.type, exc.message, request) from None
        except (AttributeError, KeyError, TypeError, ValueError):  # a shape not as documented
            unreadable = "Claude sent an event this server cannot read."
            raise ProviderError("api_error", unreadable) from None
        except UpstreamStatusError as exc:
            self.reachability.answered()
            error_type = exc.error_type or _TYPE_BY_STATUS.get(exc.status, "api_error")
            raise self._safe_error(error_type, exc.message or str(exc), request) from None
        except UPSTREAM_TRANSPORT_ERRORS as exc:
            error = transport_error(exc, self.host)
            if error.kind is not None and error.kind != "lost":
                self.reachability.failed(error.kind, error.message)
            raise error from None
        finally:
            names.close()
        yield reader.usage()

    def _safe_error(
        self, error_type: str, message: str, request: GenerationRequest
    ) -> ProviderError:
        """Anthropic's own message, shortened, with the key and the request's MCP tokens
        scrubbed should they ever appear."""
        for secret in (self._api_key, *mcp_tokens(request)):
            message = message.replace(secret, "[redacted]")
        return ProviderError(error_type, message[:_MAX_MESSAGE_CHARS])

    async def get_json(self, path: str) -> object:
        """A metadata GET of the API, such as a model's capabilities (models.py)."""
        return await self._api.get_json(path)

    async def close(self) -> None:
        await self._api.close()


def transport_error(exc: BaseException, host: str | None = None) -> ProviderError:
    """What a reader is told when the transport failed, naming the cause found anywhere in
    the `__cause__` chain (aiohttp wraps the socket's error in its own): a timeout, a name
    that does not resolve, a TLS handshake that failed, a refused or reset connection, a
    host that cannot be reached; else the connection was lost mid-reply. `kind` says
    which, for the log and /healthz. `host` is the API's host (and port); without it, the
    one the transport names, if any."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 16:
        chain.append(cause)
        if isinstance(cause, aiohttp.ClientConnectorError) and cause.__cause__ is None:
            cause = cause.os_error  # aiohttp keeps the socket's error here, not as a cause
        else:
            cause = cause.__cause__
    for link in chain:
        if isinstance(link, aiohttp.ClientConnectorError) and host is None:
            host = link.host if link.port in (80, 443) else f"{link.host}:{link.port}"
    where = host or "Claude's API"

    def first(*kinds: type[BaseException]) -> BaseException | None:
        return next((link for link in chain if isinstance(link, kinds)), None)

    def unreachable(kind: str, why: str) -> ProviderError:
        return ProviderError("upstream_unavailable", f"Could not connect to {where}: {why}.",
                             kind=kind)

    if first(aiohttp.ConnectionTimeoutError) is not None:
        return ProviderError("upstream_timeout",
                             f"Could not connect to {where}: it did not answer in time.",
                             kind="connect_timeout")
    if first(aiohttp.ServerTimeoutError, TimeoutError) is not None:
        message = ("Claude did not answer in time." if host is None
                   else f"Claude did not answer in time: {host} sent nothing for too long.")
        return ProviderError("upstream_timeout", message, kind="timeout")
    if first(aiohttp.ClientConnectorDNSError, socket.gaierror) is not None:
        return unreachable("dns", "its name does not resolve (DNS)")
    tls = first(ssl.SSLError, aiohttp.ClientSSLError)
    if tls is not None:
        reasons = (getattr(link, "reason", None) for link in chain
                   if isinstance(link, ssl.SSLError))
        reason = str(next((r for r in reasons if r), None) or type(tls).__name__)
        return unreachable("tls", f"the TLS handshake failed ({reason.replace('_', ' ').lower()})")
    if first(ConnectionRefusedError) is not None:
        return unreachable("refused", "the connection was refused")
    if first(ConnectionResetError) is not None:
        return ProviderError("upstream_unavailable", f"The connection to {where} was reset.",
                             kind="reset")
    connector = first(aiohttp.ClientConnectorError)
    if isinstance(connector, aiohttp.ClientConnectorError):
        why = connector.os_error.strerror or "the host cannot be reached"
        return unreachable("unreachable", why[:1].lower() + why[1:])
    return ProviderError("upstream_unavailable", "The connection to Claude was lost.", kind="lost")

