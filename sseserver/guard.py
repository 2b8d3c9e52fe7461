"""What every request passes on its way to a route, without an aiohttp middleware: the
checks (the client behind a trusted proxy, a CORS preflight, the access token), and every
refusal as a JSON error `{"error": {"type", "message"}}` with its status
(docs/protocol.md, "Errors"); nothing unexpected leaks a stack trace.

    request ─▶ a route's own handler: check() ─▶ the route ─▶ error_answer() on a refusal
           ─▶ no route for it: fallback() ─▶ check() ─▶ 404, or 405 with Allow

No middleware on purpose: an aiohttp app with any middleware wraps every handler in two
more coroutines (the middleware's and aiohttp's own), and an open stream would hold both
for its whole life (docs/performance.md, "Memory per open stream"). Ordinary routes are
wrapped by `guarded`, whose frame lasts as long as the request; the SSE route
(subscriber.py, served by serving.py) calls `check` and `error_answer` itself, so an open
stream holds one coroutine of ours.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from .access_log import access_logger, loggable
from .app_keys import METRICS
from .auth import require_token
from .cors import cors_preflight
from .errors import Refused, ServerError, StoreDown, StoreUnavailable
from .forwarded import resolve_client
from .identity import require_user

log = logging.getLogger("sseserver.errors")

# nginx's "client closed request": the client left before its answer could be sent (e.g.
# during prepare()). Not a server error; seen only in the access log.
CLIENT_CLOSED_REQUEST: Final = 499

# aiohttp's own refusals (a body over client_max_size, ...) and ours for a missing route:
# their error type, in Anthropic's vocabulary like ours.
_HTTP_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Set on a request once its 499 line is written: a route that is guarded and also serves a
# stream (the AI SDK's chat) passes two guards, and a request gets one line.
_GONE_LOGGED: Final = web.RequestKey("gone_logged", bool)


def error_response(status: int, type: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"type": type, "message": message}}, status=status, headers=headers,
    )


def _http_error(request: web.Request, status: int, reason: str = "") -> tuple[str, str]:
    """The error type and message of an HTTP error that is not one of our refusals: a
    missing route (404), a method a path does not take (405), or one of aiohttp's own."""
    if status == 404:
        message = "No such route."
    elif status == 405:
        message = f"{request.method} is not allowed here."
    else:
        message = reason
    return _HTTP_TYPES.get(status, "api_error"), message


def refusal_response(request: web.Request, refusal: Refused) -> web.Response:
    """The JSON answer for a refusal, counted under its metric label when it has one."""
    if refusal.label is not None:
        request.app[METRICS].refused.labels(refusal.label).inc()
    return error_response(refusal.status, refusal.type, refusal.message, refusal.headers)


def check(request: web.Request) -> web.StreamResponse | None:
    """The checks before any route, in order: the client is known before anything may
    answer (the access log names it); a CORS preflight is answered before the token is
    asked for (browsers send preflights without credentials). None to go on, a response
    to answer at once; raises Refused."""
    resolve_client(request)
    answer = cors_preflight(request)
    if answer is not None:
        return answer
    require_token(request)
    return None


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer to what a route raised before its response began; re-raises what is
    not a refusal (a redirect)."""
    if isinstance(exc, Refused):
        return refusal_response(request, exc)
    if isinstance(exc, StoreUnavailable):
        # Before a response was started: nothing was begun, so say so and when to retry.
        log.warning("%s %s: %s", request.method, loggable(request.path), exc)
        return refusal_response(request, StoreDown())
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, *_http_error(request, exc.status, exc.reason), headers)
    if isinstance(exc, ConnectionError):
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    log.error("unexpected error in %s %s", request.method, loggable(request.path),
              exc_info=exc)
    return refusal_response(request, ServerError())


async def json_error_bodies(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook, the net under the routes: an error aiohttp answers by
    itself (a request its router cannot place, such as a CONNECT) gets the JSON body every
    other error has."""
    if isinstance(response, web.HTTPException) and response.status >= 400:
        type, message = _http_error(request, response.status, response.reason)
        response.content_type = "application/json"
        response.text = json.dumps({"error": {"type": type, "message": message}})


def note_gone(request: web.Request, started: float) -> None:
    """The client left (handler cancellation) or the server is stopping before any answer
    began: aiohttp logs no line for a cancelled handler, so this is its one line. An SSE
    response that had begun logs its own (serving.py)."""
    logger = access_logger(request)
    if logger is not None and request.writer.output_size == 0 and _GONE_LOGGED not in request:
        request[_GONE_LOGGED] = True
        logger.gone(request, time.monotonic() - started)


def guarded(route: Handler) -> Handler:
    """An ordinary route with the checks before it and its refusals as JSON errors."""

    @functools.wraps(route)
    async def handler(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            answer = check(request)
            if answer is not None:
                return answer
            await require_user(request)
            return await route(request)
        except asyncio.CancelledError:
            note_gone(request, started)
            raise
        except Exception as exc:
            return error_answer(request, exc)

    return handler


@guarded
async def fallback(request: web.Request) -> web.StreamResponse:
    """The last route, matching every path and method the others do not: 405 with Allow
    where the path has routes for other methods, else 404. A CORS preflight never gets
    here: `check` answers it first."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        return error_response(405, *_http_error(request, 405),
                              {"Allow": ",".join(sorted(allowed))})
    return error_response(404, *_http_error(request, 404))
