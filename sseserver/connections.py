"""The HTTP connection layer around aiohttp's: what a client may do before any route runs
(docs/operations.md, "Limits and timeouts").

    accept ─▶ --max-connections open already? ─▶ 503, closed
      │
      ▼
    request head ─▶ request line over MAX_LINE_BYTES ─────────────────▶ 414
      │          ─▶ head over --max-header-bytes, or MAX_HEADERS lines ▶ 431
      │          ─▶ not complete within --request-timeout ────────────▶ closed
      ▼
    the app (guard.py) ─▶ response ─▶ idle: closed after --keepalive-timeout

aiohttp bounds each header line and the number of headers, but not a head's total size,
so connections sending many long header lines and never finishing hold memory without
bound in total; its only deadline is the keep-alive one, which also serves as the
deadline of a connection's first head. So its HTTP parser is wrapped (`_HeadGuard`) to
count each head's bytes and lines, and a timer per head closes a connection that does not
finish it in time. A parser error (aiohttp's or ours) becomes a JSON error like every
other refusal, logged without the request's bytes: a request line holds a message or a
token in its query.

`SSERunner` is aiohttp's AppRunner serving connections of this kind; `python -m
sseserver`, gunicorn's worker and the tests all run the app through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    ContentEncodingError,
    HttpProcessingError,
    LineTooLong,
)
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestPayloadError

from .access_log import AccessLogger
from .app_keys import METRICS
from .config import Settings
from .errors import BadRequest, HeadersTooLarge, Refused, TooManyConnections, UriTooLong
from .guard import error_response
from .open_files import DescriptorWatch, Every, connection_cap, open_files_limit
from .option_values import MAX_HEADERS, MAX_LINE_BYTES

log = logging.getLogger("sseserver.connections")

# How long a connection turned away at --max-connections stays open after its 503 (the
# client may be sending its request: closing at once could reset the answer away).
TURN_AWAY_LINGER: Final = 1.0


def _canned(refused: Refused) -> bytes:
    """A whole HTTP response for a refusal, for a connection no parser will read."""
    body = json.dumps({"error": {"type": refused.type, "message": refused.message}}).encode()
    headers = "".join(f"{name}: {value}\r\n" for name, value in refused.headers.items())
    return (
        f"HTTP/1.1 {refused.status} Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{headers}"
        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    ).encode() + body


_TURNED_AWAY: Final = _canned(TooManyConnections())


class _Refusal(BadHttpMessage):
    """One of our refusals, raised where aiohttp's parser raises its own, so that aiohttp
    answers it in its place in the connection's order of requests."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.message)
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    request_timeout: float
    max_connections: int


class _HeadGuard:
    """aiohttp's HTTP parser, with each request head's bytes, lines and request line
    checked before they are parsed. A head is what arrives from the end of the last
    request's body (or the connection's start) up to its blank line."""

    __slots__ = ("_body", "_bytes", "_connection", "_limit", "_line_open", "_lines", "_parser",
                 "_stopped", "_tail")

    def __init__(self, parser: Any, connection: GuardedConnection, limit: int) -> None:
        self._parser = parser
        self._connection = connection
        self._limit = limit
        self._bytes = 0  # of the head being received
        self._lines = 0
        self._tail = b""  # its last bytes, for a blank line split between two reads
        self._line_open = True  # its request line has not ended yet
        self._body: StreamReader | None = None  # the last request's, while it arrives
        self._stopped = False  # refused: nothing more is read from this connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def feed_data(self, data: bytes) -> tuple[Sequence[Any], bool, bytes]:
        if self._stopped:
            return (), False, b""
        body = self._body
        in_head = body is None or body.is_eof()
        if in_head:
            self._check(data)
        try:
            messages, upgraded, tail = self._parser.feed_data(data)
        except HttpProcessingError as exc:
            self._stopped = True
            if not in_head and body is not None:
                # The error is in the body being read (a deflate stream that does not end
                # well): the handler reading it answers, once.
                body.set_exception(RequestPayloadError(str(exc)))
                return (), False, b""
            raise
        if messages:
            self._bytes = self._lines = 0
            self._tail = b""
            self._line_open = True
            self._body = messages[-1][1]
            self._connection.head_done()
        elif in_head:
            self._bytes += len(data)
            self._lines += data.count(b"\n")
            self._tail = (self._tail + data[-3:])[-3:]
        return messages, upgraded, tail

    def _check(self, data: bytes) -> None:
        """Refuse before parsing what would take the head past its bounds: aiohttp keeps
        every header twice (bytes and text) until the head is complete."""
        if not self._bytes and data:
            self._connection.head_started()
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            end += 4
        elif self._tail:  # a blank line split between the last read and this one
            joined = (self._tail + data[:3]).find(b"\r\n\r\n")
            end = joined + 4 - len(self._tail) if joined >= 0 else -1
        head = len(data) if end < 0 else end  # the rest is a body, or the next request
        if self._line_open:
            line_end = data.find(b"\n", 0, head)
            if self._bytes + (head if line_end < 0 else line_end) > MAX_LINE_BYTES + 1:
                self._stop(UriTooLong(
                    f"The request line is longer than {MAX_LINE_BYTES} bytes; send long "
                    "messages with POST /api/streams."
                ))
            self._line_open = line_end < 0
        # Lines: the request line, one per header, and the blank line.
        lines = self._lines + data.count(b"\n", 0, head)
        if self._bytes + head > self._limit or lines > MAX_HEADERS + 2:
            self._stop(HeadersTooLarge(
                f"The request's headers are larger than {self._limit} bytes in all, or "
                f"more than {MAX_HEADERS}."
            ))

    def _stop(self, refused: Refused) -> None:
        self._stopped = True
        raise _Refusal(refused)


class GuardedConnection(web.RequestHandler):
    """aiohttp's protocol for one connection, with the bounds above."""

    __slots__ = ("_counted", "_deadline", "_server", "_turned_away")

    def __init__(self, manager: GuardedServer, **options: Any) -> None:
        super().__init__(manager, **options)
        self._server = manager
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False
        self._turned_away = False
        parser = _HeadGuard(self._parser, self, manager.limits.max_header_bytes)
        self._parser = parser  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        if server.open >= server.limits.max_connections:
            self._turned_away = True
            server.turn_away(transport)
            return
        server.open += 1
        self._counted = True
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            server.watch.accepted(sock.fileno())
        self.head_started()  # the first head's deadline runs from the connection's start

    def data_received(self, data: bytes) -> None:
        if not self._turned_away:
            super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._turned_away:
            return
        self.head_done()
        if self._counted:
            self._counted = False
            self._server.open -= 1
        super().connection_lost(exc)

    def head_started(self) -> None:
        if self._deadline is None:
            self._deadline = self._server.loop.call_later(
                self._server.limits.request_timeout, self._too_slow
            )

    def head_done(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        log.debug("closed a connection that did not send a request head within %.0fs",
                  self._server.limits.request_timeout)
        self.force_close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A body that does not decode (corrupt gzip) of a request answered without reading
        it (401, 415, ...) fails again while aiohttp reads what is left of it before
        closing: the client's doing, not a server error to log with a traceback."""
        if isinstance(kw.get("exc_info"), RequestPayloadError):
            log.debug("dropped the unreadable rest of a request body")
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """What the HTTP parser refused, as a JSON error; logged without the request's
        bytes (aiohttp's own answer and log line quote the request line)."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        refused = _refusal_for(exc)
        log.debug("refused a request from %s: %s", request.remote, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was started already")
        response = error_response(refused.status, refused.type, refused.message,
                                  refused.headers)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.force_close()
        return response


def _refusal_for(exc: HttpProcessingError) -> Refused:
    if isinstance(exc, _Refusal):
        return exc.refused
    if isinstance(exc, LineTooLong):  # a header line: the request line is ours (_HeadGuard)
        return HeadersTooLarge(f"A header line is longer than {MAX_LINE_BYTES} bytes.")
    if exc.message == "Too many headers received":  # aiohttp's words for its max_headers
        return HeadersTooLarge(f"The request has more than {MAX_HEADERS} headers.")
    if isinstance(exc, ContentEncodingError):
        return BadRequest("The body could not be read: its Content-Encoding does not decode.")
    return BadRequest("The request is not valid HTTP/1.1.")


class GuardedServer(web.Server):
    """aiohttp's protocol factory, making GuardedConnections and counting them."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: Limits,
        watch: DescriptorWatch,
        on_turned_away: Callable[[], None],
        request_factory: Any,
        handler_cancellation: bool,
        **options: Any,
    ) -> None:
        super().__init__(handler, request_factory=request_factory,
                         handler_cancellation=handler_cancellation, **options)
        self.loop = asyncio.get_running_loop()
        self.limits = limits
        self.watch = watch
        self.open = 0
        self._options = options
        self._on_turned_away = on_turned_away
        self._full = Every()

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self, loop=self.loop, **self._options)

    def turn_away(self, transport: asyncio.BaseTransport) -> None:
        """Answer 503 at once and close, without reading (no parser, no task)."""
        self._on_turned_away()
        if self._full.due():
            log.warning("turning connections away: %d open, the most --max-connections "
                        "allows", self.open)
        transport = cast(asyncio.Transport, transport)  # uvloop's is not an instance of it
        transport.write(_TURNED_AWAY)
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(TURN_AWAY_LINGER, transport.close)


class SSERunner(web.AppRunner):
    """aiohttp's AppRunner serving GuardedConnections, with handler cancellation on (a
    client that disconnects cancels its handler at once, even while nothing is written)."""

    def __init__(
        self, app: web.Application, settings: Settings, *, shutdown_timeout: float,
        **options: Any,
    ) -> None:
        handler_options: dict[str, Any] = {
            "access_log_class": AccessLogger,
            "keepalive_timeout": settings.keepalive_timeout,
            "max_line_size": MAX_LINE_BYTES,
            "max_field_size": MAX_LINE_BYTES,
            "max_headers": MAX_HEADERS,
            "read_bufsize": 16384,
            **options,
        }
        super().__init__(app, handler_cancellation=True, shutdown_timeout=shutdown_timeout,
                         **handler_options)
        self._handler_options = handler_options
        self._settings = settings

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app; its factories are ours too
        limit = open_files_limit()
        watch = DescriptorWatch(limit)
        watch.install(asyncio.get_running_loop())
        settings = self._settings
        limits = Limits(settings.max_header_bytes, settings.request_timeout,
                        connection_cap(settings.max_connections, limit))
        refused = self.app[METRICS].refused.labels("connections")
        return GuardedServer(
            plain.request_handler, limits=limits, watch=watch, on_turned_away=refused.inc,
            request_factory=plain.request_factory, handler_cancellation=True,
            **self._handler_options,
        )
