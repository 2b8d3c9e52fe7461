"""A faithful fake of Anthropic's Messages API, served on 127.0.0.1 for the test suite.

Why it exists: the product streams Claude's replies through the official SDK, and mocking
the SDK would prove nothing about the real path (HTTP, SSE framing, the SDK's event
accumulation, its error mapping and retries). This fake speaks the wire format instead, so
tests drive ``AsyncAnthropic(base_url=fake.base_url)`` exactly as production drives the API.

Wire format served on ``POST /v1/messages`` with ``"stream": true`` (HTTP/1.1, chunked,
``content-type: text/event-stream; charset=utf-8``, a ``request-id`` header), one
``event: NAME\ndata: JSON\n\n`` frame per event, each written to the socket as produced:
``message_start``, then each content block of the reply (``content_block_start``, its
deltas, ``content_block_stop``; a ``ping`` after the first start), ``message_delta`` (stop
reason, refusal ``stop_details``, cumulative usage with the cache, thinking and web search
shares), ``message_stop``. A ``Reply`` of ``chunks`` is one text block of ``text_delta``s;
its ``blocks`` may hold every other shape (thinking with its signature, redacted thinking,
a server tool call with ``input_json_delta``, a web search or web fetch result or error,
code execution, bash and text editor results, a tool search's result, MCP tool listings,
calls and results, a compaction with its ``compaction_delta``, a container upload, cited
text, and
block, delta and event types the SDK does not know): ``tests/support/fake_blocks.py``. A
``Reply``'s ``container`` goes in ``message_delta.delta.container``.

``GET /v1/files/{id}`` answers a file's metadata (the Files API's ``FileMetadata``) for each
file a reply named (``files_created``: id -> filename), 404 ``not_found_error`` for any
other; ``file_delay`` and ``file_error`` slow or fail every lookup.
JSON is compact and UTF-8 (non-ASCII characters are not escaped).

Requests are checked like the API checks them, ``thinking`` (budget at least 1,024 and
below ``max_tokens``), the web search tool, ``cache_control``, and image and document
blocks (``tests/support/fake_files.py``: media types, base64 that decodes to a file of that type,
``citations``, at most 100 images) included. A request that holds documents and has no
behaviour queued is answered with text citing each of them (``char_location`` for a text
document, ``page_location`` for a PDF), as the API answers with citations enabled. Each is
recorded (``requests``, counted in ``request_count``) with its ``cache_control`` and
``thinking``, and what it read from and wrote to the fake's prompt cache, which models
Anthropic's prefix caching (``tests/support/fake_cache.py``): when a request caches something, its
usage reports the cache's figures instead of the ``Reply``'s ``input_tokens``.

Authentication: the key is accepted from ``x-api-key`` *or* ``authorization: Bearer``.
NOTE: the SDK sends ``api_key`` as ``Authorization: Bearer KEY``, not ``x-api-key``; use
:attr:`RecordedRequest.api_key` to check which key arrived. A missing key, a wrong key or a
missing ``anthropic-version`` header is answered like Anthropic does (401
``authentication_error`` / 400 ``invalid_request_error``) without consuming a queued
behaviour; so are malformed bodies (400) and unknown paths (404 ``not_found_error``).

What each behaviour means to the relay, checked by ``tests/test_fake_anthropic.py`` with the
locked SDK (which exception class carries it is the SDK's business, and has changed between
its minor releases):

- ``HttpError(401, "authentication_error")`` -> ``anthropic.AuthenticationError``;
  429 -> ``RateLimitError``; 500 -> ``InternalServerError``; 529 -> ``OverloadedError``
  (a subclass of ``InternalServerError``); 400 -> ``BadRequestError``. ``.type`` is the
  ``error.type`` sent, ``.status_code`` the HTTP status, ``.request_id`` the header.
  429/5xx are retried by the SDK when ``max_retries > 0``.
- ``MidStreamError`` -> plain ``anthropic.APIStatusError`` (no subclass) with
  ``.status_code == 200`` (the stream's HTTP status), ``.type == "overloaded_error"``
  (the ``error.type`` sent), ``.body == {"type": "error", "error": {...}}``; raised
  while iterating, after the earlier deltas were delivered. Not retried.
- ``Drop`` -> one of ``UPSTREAM_TRANSPORT_ERRORS`` (providers/anthropic.py), raised after
  the earlier deltas were delivered, which the relay reports as ``upstream_unavailable``.
- ``EndsEarly`` -> nothing is raised: the body just ends; the relay itself notices that
  ``message_stop`` never came and reports ``upstream_unavailable``.
- ``Silent`` -> nothing is raised until the SDK's read timeout; closing the SDK stream
  closes the TCP connection, which the fake records in ``closed_at`` within a few ms.

Run it as its own process (for load tests): ``python -m tests.support.fake_anthropic --port 8765
--chunks 50 --chunk-text "word " --delay-ms 20``; it prints its URL on stdout and serves
``default_reply`` until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import signal
import string
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .fake_blocks import (
    SIGNATURE,
    BashResult,
    Block,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    McpToolListing,
    McpToolResult,
    McpToolUse,
    RedactedThinking,
    ServerToolUse,
    Text,
    TextEditorResult,
    Thinking,
    ToolSearchResult,
    ToolUse,
    UnknownBlock,
    UnknownEvent,
    WebFetchResult,
    WebSearchResult,
    fetches,
    file_ids,
    output_text,
    searches,
    thinking_text,
    web_citation,
    web_result,
)
from .fake_cache import CacheUse, PromptCache
from .fake_files import cited_blocks, documents, fingerprints, validate_files
from .fake_models import MODELS_PATH, model_info, validate_features

__all__ = [
    "DEFAULT_API_KEY",
    "FILES_PATH",
    "MESSAGES_PATH",
    "BashResult",
    "Behaviour",
    "Block",
    "CacheUse",
    "CodeExecutionResult",
    "Compaction",
    "ContainerUpload",
    "Drop",
    "FakeAnthropic",
    "HttpError",
    "McpToolListing",
    "McpToolResult",
    "McpToolUse",
    "MidStreamError",
    "RecordedRequest",
    "RedactedThinking",
    "Reply",
    "ServerToolUse",
    "Silent",
    "Text",
    "TextEditorResult",
    "Thinking",
    "ToolSearchResult",
    "ToolUse",
    "UnknownBlock",
    "UnknownEvent",
    "WebFetchResult",
    "WebSearchResult",
    "count_output_tokens",
    "fake_anthropic",
    "main",
    "running_fake_anthropic",
    "sse_frame",
    "web_citation",
    "web_result",
]

DEFAULT_API_KEY: Final = "sk-ant-api03-fAkEtEsTkEy0000sseserver0000fAkEtEsTkEy0000000000-AAAAAA"
"""The key a fake started without one accepts (shaped like a real key, obviously not one)."""

MESSAGES_PATH: Final = "/v1/messages"
FILES_PATH: Final = "/v1/files/"
MAX_BODY_BYTES: Final = 128 * 1024 * 1024

# Anthropic's usual wording for each error type, used when a test gives no message.
_DEFAULT_MESSAGES: Final[Mapping[str, str]] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "This request would exceed the rate limit for your organization.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

# The HTTP status Anthropic pairs with each error type; used when a mid-stream error is
# enqueued for a non-streaming request, which can only fail with a status.
_STATUS_FOR_TYPE: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_ID_ALPHABET: Final = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Reply:
    """A normal streamed reply: its content blocks, then a clean end."""

    chunks: Sequence[str] = ()
    """The text of a reply of one text block, one ``text_delta`` per chunk."""
    delay: float = 0.0
    """Seconds slept before each delta of any kind (lets tests observe streaming)."""
    input_tokens: int = 12
    """``usage.input_tokens`` when the request caches nothing (see ``FakeAnthropic.cache``)."""
    stop_reason: str = "end_turn"
    output_tokens: int | None = None
    """Overrides :func:`count_output_tokens` for ``message_delta.usage.output_tokens``."""
    stamp: bool = False
    """Streamed deltas carry ``time.monotonic_ns()`` taken as each is written, and a space,
    instead of the chunk's text: a client on the same machine subtracts it from the time the
    text reached it, the latency of everything in between (``make bench-redis``)."""
    blocks: Sequence[Block | UnknownEvent] = ()
    """The content, in order (see ``tests/support/fake_blocks.py``); empty: ``Text(chunks)``."""
    stop_details: dict[str, Any] | None = None
    """``message_delta.delta.stop_details``, e.g. a refusal's category and explanation."""
    gzip: bool = False
    """The stream is sent with ``content-encoding: gzip``, as an HTTP server may send it
    to a client that accepts it (the SDK's does)."""
    container: dict[str, Any] | None = None
    """``message_delta.delta.container`` (``{"id", "expires_at"}``), as the API sends it
    when a code execution tool ran in a container."""

    @property
    def content_blocks(self) -> Sequence[Block | UnknownEvent]:
        return self.blocks or (Text(self.chunks),)

    def content(self) -> list[dict[str, Any]]:
        """The content as a whole message holds it (what a continuation sends back)."""
        return [b.content() for b in self.content_blocks if not isinstance(b, UnknownEvent)]


@dataclass(frozen=True)
class HttpError:
    """An HTTP error answered before any stream, with Anthropic's JSON error body."""

    status: int
    error_type: str
    message: str = ""
    """Empty means Anthropic's usual wording for ``error_type``."""
    retry_after: int | None = None
    """Sets the ``retry-after`` header (seconds), which the SDK's retry honours."""
    retry_after_ms: int | None = None
    """Sets ``retry-after-ms``, which the SDK prefers; lets tests retry without waiting 1 s."""
    should_retry: bool | None = None
    """Sets ``x-should-retry: true|false``, which overrides the SDK's status-based policy."""

    def __post_init__(self) -> None:
        if not self.message:
            object.__setattr__(self, "message", _default_message(self.error_type))


@dataclass(frozen=True)
class MidStreamError:
    """A 200 stream that sends some deltas, then ``event: error``, then ends the body."""

    chunks: Sequence[str] = ()
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True)
class Drop:
    """Some deltas, then an abrupt TCP close: no terminating chunk, no ``message_stop``."""

    chunks: Sequence[str] = ()


@dataclass(frozen=True)
class Silent:
    """Some deltas, then nothing at all (not even pings) until the client closes."""

    chunks: Sequence[str] = ()


@dataclass(frozen=True)
class EndsEarly:
    """Some deltas, then a clean end of the body (its terminating chunk): no
    ``message_delta``, no ``message_stop``, as a proxy that gives up may end it."""

    chunks: Sequence[str] = ()


Behaviour = Reply | HttpError | MidStreamError | Drop | Silent | EndsEarly


@dataclass
class RecordedRequest:
    """One request to ``/v1/messages`` as the fake saw it, updated while it is served."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Case-insensitive copy of the request headers."""
    body: dict[str, Any]
    """The parsed JSON body (``{}`` if it was not a JSON object)."""
    opened_at: float
    """``time.monotonic()`` when the request arrived."""
    closed_at: float | None = None
    """``time.monotonic()`` when this request's TCP connection closed (either side), else None.

    A completed reply leaves a keep-alive connection open in the client's pool, so this
    stays None until that pooled connection closes; compare with :attr:`completed_at`.
    """
    request_id: str = ""
    """The ``request-id`` header (and ``request_id`` in error bodies) sent back."""
    behaviour: Behaviour | None = None
    """What was served; None when the fake answered a 400/401/404 of its own."""
    status: int | None = None
    """The HTTP status sent (None for a request dropped before any response)."""
    deltas_sent: int = 0
    """How many ``content_block_delta`` events were written to the socket."""
    completed_at: float | None = None
    """``time.monotonic()`` when the full response had been written, else None."""
    closed: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set when the connection closes, at ``closed_at``."""
    sent: list[tuple[float, str]] = field(default_factory=list)
    """``(time.monotonic(), delta type)`` of each ``content_block_delta``, once written."""
    cache: CacheUse | None = None
    """What the request read from and wrote to the fake's prompt cache (None: nothing)."""

    @property
    def cache_control(self) -> object:
        """The request's top-level ``cache_control`` (None when absent)."""
        return self.body.get("cache_control")

    @property
    def thinking(self) -> object:
        """The request's ``thinking`` parameter (None when absent)."""
        return self.body.get("thinking")

    @property
    def files(self) -> list[tuple[str, str, str]]:
        """(kind, media type, SHA-256 of the bytes) of each image and document sent."""
        return fingerprints(self.body)

    @property
    def api_key(self) -> str | None:
        """The key the client sent, from ``x-api-key`` or ``authorization: Bearer``."""
        return _presented_key(self.headers)


def count_output_tokens(chunks: Sequence[str]) -> int:
    """Anthropic-like output token count: about 4 UTF-8 bytes a token, never below 1.

    Tokens are what usage reports; a deterministic estimate lets tests assert on it.
    """
    size = sum(len(chunk.encode("utf-8")) for chunk in chunks)
    return max(1, math.ceil(size / 4))


def _default_message(error_type: str) -> str:
    """Anthropic's wording for ``error_type``, or a generic sentence for unknown types."""
    return _DEFAULT_MESSAGES.get(error_type, "An error occurred.")


def _new_id(prefix: str) -> str:
    """An id shaped like Anthropic's (``msg_...``, ``req_...``): prefix plus 24 base62."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def _presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key in ``x-api-key``, else the token in ``authorization: Bearer``."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _json(data: object) -> str:
    """Compact UTF-8 JSON, as Anthropic's API writes it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sse_frame(event: str, data: object) -> bytes:
    """One SSE frame: ``event: NAME\\ndata: JSON\\n\\n``; JSON never contains a newline."""
    return f"event: {event}\ndata: {_json(data)}\n\n".encode()


def _error_body(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    """Anthropic's error shape; in-stream errors carry no ``request_id``."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _start_usage(input_tokens: int, cache: CacheUse | None) -> dict[str, Any]:
    """``message_start`` usage: every field of the SDK's Usage that the API fills in."""
    read, write = (cache.read, cache.write) if cache is not None else (0, 0)
    one_hour = cache is not None and cache.ttl == "1h"
    return {
        "input_tokens": cache.uncached if cache is not None else input_tokens,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": 0 if one_hour else write,
                           "ephemeral_1h_input_tokens": write if one_hour else 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }


def _final_usage(behaviour: Reply, cache: CacheUse | None) -> dict[str, Any]:
    """``message_delta`` usage: cumulative counts, with the thinking and search shares."""
    blocks = behaviour.content_blocks
    output_tokens = behaviour.output_tokens
    if output_tokens is None:
        output_tokens = count_output_tokens(output_text(blocks))
    thinking = thinking_text(blocks)
    usage: dict[str, Any] = {
        "input_tokens": cache.uncached if cache is not None else behaviour.input_tokens,
        "cache_creation_input_tokens": cache.write if cache is not None else 0,
        "cache_read_input_tokens": cache.read if cache is not None else 0,
        "output_tokens": output_tokens,
    }
    if any(isinstance(b, Thinking | RedactedThinking) for b in blocks):
        usage["output_tokens_details"] = {
            "thinking_tokens": count_output_tokens(thinking) if thinking else 0
        }
    if searches(blocks) or fetches(blocks):
        usage["server_tool_use"] = {"web_search_requests": searches(blocks),
                                    "web_fetch_requests": fetches(blocks)}
    return usage


_THINKING_DISPLAYS: Final = (None, "summarized", "omitted")


def _validate_thinking(thinking: object, max_tokens: int) -> str | None:
    """The API's rules for ``thinking`` (ThinkingConfigParam), as its 400 would say."""
    if not isinstance(thinking, dict):
        return "thinking: Input should be a valid dictionary"
    kind = thinking.get("type")
    if kind not in ("enabled", "adaptive", "disabled"):
        return "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'"
    if kind != "disabled" and thinking.get("display") not in _THINKING_DISPLAYS:
        return "thinking.display: Input should be 'summarized' or 'omitted'"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= max_tokens:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    return None


def _validate_extras(body: dict[str, Any]) -> str | None:
    """``thinking`` and ``cache_control``, as the API checks (the tools and the other
    features: fake_models.py)."""
    if "thinking" in body:
        problem = _validate_thinking(body["thinking"], body["max_tokens"])
        if problem is not None:
            return problem
    control = body.get("cache_control")
    if control is not None and (
        not isinstance(control, dict) or control.get("type") != "ephemeral"
        or control.get("ttl", "5m") not in ("5m", "1h")
    ):
        return "cache_control: Input should be {'type': 'ephemeral', 'ttl'?: '5m' or '1h'}"
    return None


def _validate_body(body: object) -> str | None:
    """Anthropic's 400 message for a body the Messages API would refuse, else None."""
    if not isinstance(body, dict):
        return "Input should be a valid dictionary or object to extract fields from"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a valid string"
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: Input should be a valid boolean"
    return _validate_extras(body) or validate_files(body) or _validate_tool_turns(body)


def _blocks(message: object) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _validate_tool_turns(body: dict[str, Any]) -> str | None:
    """The API's rules for tool calls and their results: every ``tool_use`` answered by a
    ``tool_result`` in the next message and nothing else answered; with thinking enabled,
    the assistant turn that called the tools being answered starts with its thinking block,
    signature intact."""
    messages = body["messages"]
    # Adaptive thinking may skip a turn's thinking; enabled thinking always opens with it.
    thinking = isinstance(body.get("thinking"), dict) and body["thinking"].get(
        "type") == "enabled"
    for index, message in enumerate(messages):
        calls = [b.get("id") for b in _blocks(message) if b.get("type") == "tool_use"]
        following = _blocks(messages[index + 1]) if index + 1 < len(messages) else None
        answered = [
            b.get("tool_use_id") for b in following or () if b.get("type") == "tool_result"
        ]
        if calls and following is not None and sorted(map(str, calls)) != sorted(
            map(str, answered)
        ):
            missing = [c for c in calls if c not in answered]
            if missing:
                return (f"messages.{index}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(map(str, missing))}. Each "
                        "`tool_use` block must have a corresponding `tool_result` block in "
                        "the next message.")
        unexpected = [a for a in answered if a not in calls]
        if unexpected:
            return (f"messages.{index + 1}.content.0: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {', '.join(map(str, unexpected))}. Each "
                    "`tool_result` block must have a corresponding `tool_use` block in the "
                    "previous message.")
    last = messages[-2] if len(messages) >= 2 else None
    if thinking and _blocks(messages[-1]) and any(
        b.get("type") == "tool_result" for b in _blocks(messages[-1])
    ) and last is not None:
        first = (_blocks(last) or [{}])[0]
        if first.get("type") not in ("thinking", "redacted_thinking"):
            return (f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
                    f"`redacted_thinking`, but found `{first.get('type')}`. When `thinking` "
                    "is enabled, a final `assistant` message must start with a thinking block "
                    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks).")
        if first.get("type") == "thinking" and first.get("signature") != SIGNATURE:
            return (f"messages.{len(messages) - 2}.content.0: Invalid `signature` in "
                    "`thinking` block")
    return None


class _TrackingServer(web.Server):
    """aiohttp's low-level server, also reporting each lost connection as it happens.

    ``connection_lost`` runs synchronously from the transport, so the fake learns of a
    client's close within the event loop's next turn, even while a handler is idle.
    """

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        on_lost: Callable[[web.RequestHandler], None],
    ) -> None:
        super().__init__(handler, handler_cancellation=True, request_factory=self._request)
        self._on_lost = on_lost

    def _request(
        self, message: Any, payload: Any, protocol: web.RequestHandler, writer: Any,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        """A request whose body may be as large as the API's own bound (32 MB) and more,
        so that an oversized one reaches the checks rather than aiohttp's 413."""
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop,
                               client_max_size=MAX_BODY_BYTES)

    def connection_lost(
        self, handler: web.RequestHandler, exc: BaseException | None = None
    ) -> None:
        self._on_lost(handler)
        super().connection_lost(handler, exc)


class FakeAnthropic:
    """The running fake: queue behaviours, then inspect what the client sent and when."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.default_reply = Reply(chunks=("Hello", " from", " the", " fake", " Claude."))
        self.max_recorded: int | None = None
        """If set, only the latest this many requests are kept in ``requests``."""
        self.request_count = 0
        """Requests to /v1/messages so far (``requests`` may keep fewer)."""
        self.cache = PromptCache()
        """The prompt cache requests read and write (set ``cache.min_tokens`` to taste)."""
        self.usages: list[dict[str, Any]] = []
        """The final usage of every reply the fake finished, as it sent it: its own count
        of the tokens it billed."""
        self.tool_calls = 0
        """With no behaviour queued, a conversation that has answered fewer than this many
        tool calls is answered by one more call of ``tool_name`` (the bench's S6)."""
        self.tool_name = "noop"
        self.tool_gaps: deque[float] = deque(maxlen=100_000)
        """Seconds from the end of each tool_use reply to the continuation's arrival."""
        self._tool_use_done: dict[str, float] = {}
        self.files_created: dict[str, str] = {}
        """File id -> filename of each file a reply named (``GET /v1/files/{id}``)."""
        self.file_requests: list[Mapping[str, str]] = []
        """The headers of each ``GET /v1/files/{id}``, in order."""
        self.file_delay = 0.0
        """Seconds each file lookup waits before it answers."""
        self.file_error: HttpError | None = None
        """Set: every file lookup fails with this error."""
        self.models: dict[str, dict[str, Any]] = {}
        """Model id -> its ``ModelCapabilities`` (fake_models.capabilities); an id not
        here can do everything."""
        self.models_error: HttpError | None = None
        """Set: every ``GET /v1/models/{id}`` fails with this error."""
        self.models_delay = 0.0
        """Seconds each ``GET /v1/models/{id}`` waits before it answers."""
        self.model_requests: list[str] = []
        """The model id of each ``GET /v1/models/{id}``, in order."""
        self._queue: deque[Behaviour] = deque()
        self._open: dict[web.RequestHandler, list[RecordedRequest]] = {}
        self._arrived = asyncio.Condition()
        self._server = _TrackingServer(self._handle, self._connection_lost)

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next accepted requests, one each, in order."""
        self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        """How many queued behaviours have not been served yet."""
        return len(self._queue)

    async def wait_requests(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests to /v1/messages have arrived."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(self.requests) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"only {len(self.requests)} of {count} requests arrived within {timeout}s"
            ) from None

    async def wait_closed(self, index: int = -1, timeout: float = 5.0) -> float:
        """Wait until request ``index``'s connection closed; return its ``closed_at``.

        A non-negative index may name a request that has not arrived yet.
        """
        deadline = time.monotonic() + timeout
        if index >= 0:
            await self.wait_requests(index + 1, timeout)
        record = self.requests[index]
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await record.closed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"request {index} ({record.request_id}) still open after {timeout}s"
            ) from None
        assert record.closed_at is not None
        return record.closed_at

    # -- serving -----------------------------------------------------------------

    def _connection_lost(self, handler: web.RequestHandler) -> None:
        """Stamp ``closed_at`` on every request that arrived on the lost connection."""
        now = time.monotonic()
        for record in self._open.pop(handler, []):
            record.closed_at = now
            record.closed.set()

    async def _record(self, request: web.BaseRequest, raw: bytes) -> RecordedRequest:
        """Record a /v1/messages request and tie it to its TCP connection."""
        try:
            parsed: object = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=parsed if isinstance(parsed, dict) else {},
            opened_at=time.monotonic(),
            request_id=_new_id("req_"),
        )
        transport = request.transport
        if transport is None or transport.is_closing():
            record.closed_at = record.opened_at
            record.closed.set()
        else:
            self._open.setdefault(request.protocol, []).append(record)
        async with self._arrived:
            self.request_count += 1
            self.requests.append(record)
            if self.max_recorded is not None and len(self.requests) > self.max_recorded:
                del self.requests[: -self.max_recorded]
            self._arrived.notify_all()
        return record

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Route, authenticate and validate like Anthropic, then serve a behaviour."""
        raw = await request.read()
        if request.path.startswith(FILES_PATH):
            return await self._file(request)
        if request.path.startswith(MODELS_PATH):
            return await self._model(request)
        if request.path != MESSAGES_PATH:
            return _error_response(404, "not_found_error", "Not Found", _new_id("req_"))
        record = await self._record(request, raw)
        rid = record.request_id
        if request.method != "POST":
            return self._refuse(record, 405, "invalid_request_error", "Method Not Allowed")
        presented = _presented_key(record.headers)
        if presented is None:
            return self._refuse(record, 401, "authentication_error", "x-api-key header is required")
        if presented != self.api_key:
            return self._refuse(record, 401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in record.headers:
            return self._refuse(
                record, 400, "invalid_request_error", "anthropic-version: header is required"
            )
        try:
            body: object = json.loads(raw)
        except ValueError:
            return self._refuse(
                record, 400, "invalid_request_error", "There was an issue with the request body"
            )
        problem = _validate_body(body) or validate_features(
            cast(dict[str, Any], body), record.headers, self.models
        )
        if problem is not None:
            return self._refuse(record, 400, "invalid_request_error", problem)

        behaviour = self._queue.popleft() if self._queue else self._default(record.body)
        record.behaviour = behaviour
        if not isinstance(behaviour, HttpError):
            record.cache = self.cache.use(record.body)
        if isinstance(behaviour, HttpError):
            record.status = behaviour.status
            response = _error_response(
                behaviour.status, behaviour.error_type, behaviour.message, rid
            )
            if behaviour.retry_after is not None:
                response.headers["retry-after"] = str(behaviour.retry_after)
            if behaviour.retry_after_ms is not None:
                response.headers["retry-after-ms"] = str(behaviour.retry_after_ms)
            if behaviour.should_retry is not None:
                response.headers["x-should-retry"] = "true" if behaviour.should_retry else "false"
            record.completed_at = time.monotonic()
            return response
        if record.body.get("stream") is True:
            return await self._stream(request, record, behaviour)
        return await self._answer_whole(request, record, behaviour)

    def _name_files(self, reply: Reply) -> None:
        """Files a reply names exist from then on in the Files API (a name a test chose
        beforehand is kept)."""
        for file_id in file_ids(reply.content_blocks):
            self.files_created.setdefault(file_id, f"{file_id}.txt")

    async def _file(self, request: web.BaseRequest) -> web.Response:
        """``GET /v1/files/{id}``: a file's metadata, as the Files API answers it."""
        rid = _new_id("req_")
        self.file_requests.append(CIMultiDictProxy(CIMultiDict(request.headers)))
        file_id = request.path.removeprefix(FILES_PATH)
        if request.method != "GET":
            return _error_response(405, "invalid_request_error", "Method Not Allowed", rid)
        if _presented_key(request.headers) != self.api_key:
            return _error_response(401, "authentication_error", "invalid x-api-key", rid)
        if self.file_delay > 0:
            await asyncio.sleep(self.file_delay)
        if self.file_error is not None:
            return _error_response(self.file_error.status, self.file_error.error_type,
                                   self.file_error.message, rid)
        name = self.files_created.get(file_id)
        if name is None:
            return _error_response(404, "not_found_error", f"File not found: {file_id}", rid)
        metadata = {
            "type": "file", "id": file_id, "filename": name,
            "mime_type": "image/png" if name.endswith(".png") else "text/plain",
            "size_bytes": 1024, "created_at": "2026-12-06T12:00:00Z", "downloadable": True,
        }
        return web.Response(text=_json(metadata), content_type="application/json",
                            headers={"request-id": rid})

    async def _model(self, request: web.BaseRequest) -> web.Response:
        """``GET /v1/models/{id}``: the model's ``ModelInfo``, as the Models API answers."""
        rid = _new_id("req_")
        model_id = request.path.removeprefix(MODELS_PATH)
        self.model_requests.append(model_id)
        await asyncio.sleep(self.models_delay)
        if request.method != "GET":
            return _error_response(405, "invalid_request_error", "Method Not Allowed", rid)
        if _presented_key(request.headers) != self.api_key:
            return _error_response(401, "authentication_error", "invalid x-api-key", rid)
        error = self.models_error
        if error is not None:
            return _error_response(error.status, error.error_type, error.message, rid)
        return web.Response(text=_json(model_info(model_id, self.models.get(model_id))),
                            content_type="application/json", headers={"request-id": rid})

    def _default(self, body: dict[str, Any]) -> Behaviour:
        """The default reply, or a call of ``tool_name`` while the conversation has answered
        fewer than ``tool_calls``; a continuation's arrival is timed against the end of the
        reply whose call it answers."""
        if documents(body):
            return Reply(blocks=cited_blocks(body))
        if not self.tool_calls:
            return self.default_reply
        answered = [b.get("tool_use_id") for m in body["messages"] for b in _blocks(m)
                    if b.get("type") == "tool_result"]
        if answered:
            done = self._tool_use_done.pop(str(answered[-1]), None)
            if done is not None:
                self.tool_gaps.append(time.monotonic() - done)
        if len(answered) >= self.tool_calls:
            return self.default_reply
        return Reply(blocks=(ToolUse(_new_id("toolu_"), self.tool_name, {"n": len(answered)}),),
                     stop_reason="tool_use")

    def _refuse(
        self, record: RecordedRequest, status: int, error_type: str, message: str
    ) -> web.Response:
        """Answer an error of the fake's own (auth, validation) without using the queue."""
        record.status = status
        record.completed_at = time.monotonic()
        return _error_response(status, error_type, message, record.request_id)

    async def _stream(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        behaviour: Reply | MidStreamError | Drop | Silent | EndsEarly,
    ) -> web.StreamResponse:
        """Serve a behaviour as Anthropic's SSE event sequence, flushing each frame."""
        response = web.StreamResponse(status=200)
        response.headers["content-type"] = "text/event-stream; charset=utf-8"
        response.headers["cache-control"] = "no-cache"
        response.headers["request-id"] = record.request_id
        response.enable_chunked_encoding()
        if isinstance(behaviour, Reply) and behaviour.gzip:
            response.enable_compression(web.ContentCoding.gzip)
        record.status = 200
        await response.prepare(request)

        input_tokens = behaviour.input_tokens if isinstance(behaviour, Reply) else 12
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": record.body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _start_usage(input_tokens, record.cache),
        }
        await response.write(
            sse_frame("message_start", {"type": "message_start", "message": message})
        )
        if isinstance(behaviour, Reply):
            self._name_files(behaviour)
            await self._write_blocks(response, record, behaviour.content_blocks, behaviour.delay,
                                     stamp=behaviour.stamp)
        else:  # a failure: some text, then the failure, with no content_block_stop
            await self._write_blocks(response, record, (Text(behaviour.chunks),), 0.0,
                                     last_stop=False)

        if isinstance(behaviour, MidStreamError):
            error = _error_body(behaviour.error_type, behaviour.message, None)
            await response.write(sse_frame("error", error))
            await response.write_eof()
            record.completed_at = time.monotonic()
            return response
        if isinstance(behaviour, Drop):
            await _abort_after_flush(request)
            await _hold_until_closed(record)
            return response
        if isinstance(behaviour, Silent):
            await _hold_until_closed(record)
            return response
        if isinstance(behaviour, EndsEarly):
            await response.write_eof()
            record.completed_at = time.monotonic()
            return response

        delta: dict[str, Any] = {"stop_reason": behaviour.stop_reason, "stop_sequence": None}
        if behaviour.stop_details is not None:
            delta["stop_details"] = behaviour.stop_details
        if behaviour.container is not None:
            delta["container"] = behaviour.container
        final = _final_usage(behaviour, record.cache)
        self.usages.append(final)
        await response.write(sse_frame("message_delta", {
            "type": "message_delta", "delta": delta, "usage": final,
        }))
        await response.write(sse_frame("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        record.completed_at = time.monotonic()
        if self.tool_calls:
            for block in behaviour.content_blocks:
                if isinstance(block, ToolUse):
                    self._tool_use_done[block.id] = record.completed_at
        return response

    async def _write_blocks(
        self, response: web.StreamResponse, record: RecordedRequest,
        blocks: Sequence[Block | UnknownEvent], delay: float, *, last_stop: bool = True,
        stamp: bool = False,
    ) -> None:
        """Each block's start, deltas and stop; a ping after the first start, as the API
        sends one. With ``stamp``, a text delta's text is the time it is written."""
        index = 0
        for number, block in enumerate(blocks):
            if isinstance(block, UnknownEvent):
                await response.write(sse_frame(block.name, {"type": block.name, "n": number}))
                continue
            for kind, data in block.stream():
                if kind == "start":
                    await response.write(sse_frame("content_block_start", {
                        "type": "content_block_start", "index": index, "content_block": data,
                    }))
                    if index == 0:
                        # Anthropic's ping has a space after the colon; the SDK skips it.
                        await response.write(b'event: ping\ndata: {"type": "ping"}\n\n')
                    continue
                if delay > 0:
                    await asyncio.sleep(delay)
                if stamp and data["type"] == "text_delta":
                    data = {"type": "text_delta", "text": f"{time.monotonic_ns()} "}
                await response.write(sse_frame("content_block_delta", {
                    "type": "content_block_delta", "index": index, "delta": data,
                }))
                record.deltas_sent += 1
                record.sent.append((time.monotonic(), str(data["type"])))
            if last_stop or number < len(blocks) - 1:
                await response.write(sse_frame(
                    "content_block_stop", {"type": "content_block_stop", "index": index}
                ))
            index += 1

    async def _answer_whole(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        behaviour: Reply | MidStreamError | Drop | Silent | EndsEarly,
    ) -> web.StreamResponse:
        """Answer a non-streaming request: a whole Message, or the behaviour's failure."""
        if isinstance(behaviour, EndsEarly):  # a JSON body cut short, ended cleanly
            record.status = 200
            record.completed_at = time.monotonic()
            return web.Response(text='{"id": "msg_', content_type="application/json",
                                headers={"request-id": record.request_id})
        if isinstance(behaviour, Drop):
            await _abort_after_flush(request)
            await _hold_until_closed(record)
            return web.Response()
        if isinstance(behaviour, Silent):
            await _hold_until_closed(record)
            return web.Response()
        if isinstance(behaviour, MidStreamError):
            status = _STATUS_FOR_TYPE.get(behaviour.error_type, 500)
            record.status = status
            record.completed_at = time.monotonic()
            return _error_response(
                status, behaviour.error_type, behaviour.message, record.request_id
            )
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay * len(behaviour.chunks))
        self._name_files(behaviour)
        usage = _start_usage(behaviour.input_tokens, record.cache) | _final_usage(
            behaviour, record.cache
        )
        self.usages.append(usage)
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "content": behaviour.content(),
            "model": record.body["model"],
            "stop_reason": behaviour.stop_reason,
            "stop_sequence": None,
            "stop_details": behaviour.stop_details,
            "container": behaviour.container,
            "usage": usage,
        }
        record.status = 200
        record.deltas_sent = len(behaviour.chunks)
        record.completed_at = time.monotonic()
        return web.Response(
            text=_json(message),
            content_type="application/json",
            headers={"request-id": record.request_id},
        )

    # -- lifecycle -----------------------------------------------------------------

    async def _abort_open_connections(self) -> None:
        """Cut every open connection so Silent handlers end and shutdown is immediate."""
        for handler in self._server.connections:
            if handler.transport is not None:
                handler.transport.abort()
        await asyncio.sleep(0)


def _error_response(status: int, error_type: str, message: str, request_id: str) -> web.Response:
    """A JSON error response in Anthropic's shape, with its ``request-id`` header."""
    return web.Response(
        status=status,
        text=_json(_error_body(error_type, message, request_id)),
        content_type="application/json",
        headers={"request-id": request_id},
    )


async def _abort_after_flush(request: web.BaseRequest) -> None:
    """Close the socket abruptly, once what was written has reached the kernel.

    ``transport.abort()`` discards unsent data, so wait for the write buffer to empty
    first; otherwise the deltas a Drop promises might never reach the client.
    """
    transport = request.transport
    if transport is None:
        return
    for _ in range(1000):
        if transport.is_closing() or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.001)
    transport.abort()


async def _hold_until_closed(record: RecordedRequest) -> None:
    """Write nothing until the connection is gone (the handler is then cancelled)."""
    await record.closed.wait()
    # The connection is gone; aiohttp cancels this handler. Yield so that happens here.
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running_fake_anthropic(
    api_key: str = DEFAULT_API_KEY, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeAnthropic]:
    """Serve a fake on ``host:port`` (0 picks a free port) for the duration of the block."""
    fake = FakeAnthropic(api_key)
    runner = web.ServerRunner(fake._server, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake.port = int(runner.addresses[0][1])
    fake.base_url = f"http://{host}:{fake.port}"
    try:
        yield fake
    finally:
        await fake._abort_open_connections()
        await runner.cleanup()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    """A fresh fake per test, stopped afterwards."""
    async with running_fake_anthropic() as fake:
        yield fake


async def _serve(args: argparse.Namespace) -> list[float]:
    """Serve ``default_reply`` until SIGTERM or SIGINT; the tool-call gaps, in ms."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_fake_anthropic(args.api_key, host=args.host, port=args.port) as fake:
        fake.default_reply = Reply(
            chunks=tuple(args.chunk_text for _ in range(args.chunks)),
            delay=args.delay_ms / 1000,
        )
        print(fake.base_url, flush=True)
        fake.max_recorded = 1000  # a long load run must not grow memory without bound
        fake.tool_calls = args.tool_calls
        await stop.wait()
        return sorted(1000 * gap for gap in fake.tool_gaps)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: ``python -m tests.support.fake_anthropic --port N ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--chunks", type=int, default=5, help="deltas per reply")
    parser.add_argument("--chunk-text", default="word ", help="text of each delta")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sleep before each delta")
    parser.add_argument("--tool-calls", type=int, default=0,
                        help="each conversation first calls the tool 'noop' this many times")
    parser.add_argument("--stats-file", help="at exit, write the tool-call gaps' p50/p99 here")
    args = parser.parse_args(argv)
    gaps = asyncio.run(_serve(args))
    if args.stats_file:
        stats = {"tool_gaps": len(gaps)} | ({
            "tool_gap_p50_ms": gaps[len(gaps) // 2],
            "tool_gap_p99_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
        } if gaps else {})
        Path(args.stats_file).write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
