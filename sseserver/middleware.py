"""The app's one middleware: checks before the route, then every refusal as a JSON error
`{"error": {"type", "message"}}` with its status (docs/protocol.md, "Errors"), aiohttp's
own 404/405/413 included, and nothing unexpected leaks a stack trace.

One middleware, not one per concern: each would hold a coroutine frame for as long as a
stream is open, and aiohttp wraps every request's handler once per middleware.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from .access_log import access_logger, loggable
from .errors import Refused, ServerError, StoreDown, StoreUnavailable
from .keys import METRICS

log = logging.getLogger("sseserver.errors")

# nginx's "client closed request": the client left before its answer could be sent (e.g.
# during prepare()). Not a server error; seen only in the access log.
CLIENT_CLOSED_REQUEST: Final = 499

# aiohttp's own refusals (no route, wrong method, body over client_max_size, ...): their
# error type, in Anthropic's vocabulary like ours.
_HTTP_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A check before the route: None to go on, a response to answer at once, or Refused.
Check = Callable[[web.Request], web.StreamResponse | None]


def error_response(status: int, type: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"type": type, "message": message}}, status=status, headers=headers,
    )


def refusal_response(request: web.Request, refusal: Refused) -> web.Response:
    """The JSON answer for a refusal, counted under its metric label when it has one."""
    if refusal.label is not None:
        request.app[METRICS].refused.labels(refusal.label).inc()
    return error_response(refusal.status, refusal.type, refusal.message, refusal.headers)


def json_errors(*checks: Check) -> Middleware:
    """`checks` in order, then the route, with every refusal turned into a JSON error."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        try:
            for check in checks:
                answer = check(request)
                if answer is not None:
                    return answer
            return await handler(request)
        except Refused as refusal:
            return refusal_response(request, refusal)
        except StoreUnavailable as exc:
            # Before a response was started: nothing was begun, so say so and when to retry.
            log.warning("%s %s: %s", request.method, loggable(request.path), exc)
            return refusal_response(request, StoreDown())
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            message = {
                404: "No such route.", 405: f"{request.method} is not allowed here."
            }.get(exc.status, exc.reason)
            return error_response(
                exc.status, _HTTP_TYPES.get(exc.status, "api_error"), message, headers
            )
        except ConnectionError:
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        except asyncio.CancelledError:
            # The client left (handler cancellation) or the server is stopping: aiohttp logs
            # no line for a cancelled handler. An SSE response that had begun logged its
            # own (subscriber.py); anything else is one line here.
            logger = access_logger(request)
            if logger is not None and request.writer.output_size == 0:
                logger.gone(request, time.monotonic() - started)
            raise
        except Exception:
            log.exception("unexpected error in %s %s", request.method, loggable(request.path))
            return refusal_response(request, ServerError())

    return middleware
