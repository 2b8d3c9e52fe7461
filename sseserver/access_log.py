"""Request log lines: one per request, without query strings (a message is the user's, not
the log's), and with whatever the client chose escaped, so that only the server writes a
log line (docs/operations.md, "Logs").

    127.0.0.1 "GET /healthz" 200 0.4ms
    127.0.0.1 "GET /api/streams/Qm3…" 200 2817.3ms sse bytes=5120 ended=done
    127.0.0.1 "POST /api/streams" 499 3.1ms              the client left before an answer
    127.0.0.1 "POST /api/streams" 201 4.0ms user=alice   a user's (identity.py), never a token

The client is the TCP peer, or the address a trusted proxy forwarded (forwarded.py). An
SSE response (ours or the AI SDK chat's) is logged when it ends, by serving.py through
`stream_ended`, with the bytes it sent and how it ended, also when the client's disconnect
cancelled it (aiohttp logs only responses whose handler returned). A request whose handler
was cancelled before any answer began is logged as 499 by guard.py (`note_gone`).
"""

from __future__ import annotations

from typing import Final

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from .forwarded import client_address
from .identity import request_user

# Characters of a path kept in a log line; the rest is cut (a path can be 8 KB).
MAX_LOGGED_CHARS: Final = 300


def loggable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """`text` as printable ASCII: control characters (CR, LF, ESC, NUL, C1), quotes,
    backslashes, non-ASCII and undecodable bytes escaped as in a Python literal, so a
    client cannot end a log line, forge one, or move a terminal's cursor."""
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    if not (text.isascii() and text.isprintable() and '"' not in text and "\\" not in text):
        text = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return text + "..." if cut else text



def _user(request: BaseRequest) -> str:
    """` user=ID` for a request whose token named a user, else nothing."""
    user = request_user(request)
    return "" if user is None else " user=" + loggable(user.id)


class EventStreamResponse(StreamResponse):
    """An SSE response: its access-log line is written when it ends (serving.py), not
    by aiohttp, which writes none for a handler the client's disconnect cancelled."""


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if isinstance(response, EventStreamResponse):
            return  # logged when it ended, by serving.py (stream_ended)
        self.logger.info(
            '%s "%s %s" %d %.1fms%s', loggable(client_address(request) or "-"),
            loggable(request.method), loggable(request.path), response.status, time * 1000,
            _user(request),
        )

    def stream_ended(self, request: BaseRequest, sent: int, time: float, ended: str) -> None:
        self.logger.info(
            '%s "%s %s" 200 %.1fms sse bytes=%d ended=%s%s',
            loggable(client_address(request) or "-"), loggable(request.method),
            loggable(request.path), time * 1000, sent, ended, _user(request),
        )

    def gone(self, request: BaseRequest, time: float) -> None:
        """The client left before any answer began (its handler was cancelled)."""
        self.logger.info(
            '%s "%s %s" 499 %.1fms%s', loggable(client_address(request) or "-"),
            loggable(request.method), loggable(request.path), time * 1000, _user(request),
        )


def access_logger(request: BaseRequest) -> AccessLogger | None:
    """The connection's access logger, when access logging is on."""
    logger = getattr(request.protocol, "access_logger", None)
    if isinstance(logger, AccessLogger) and logger.enabled:
        return logger
    return None
