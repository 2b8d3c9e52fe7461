"""JSON errors: every refusal is `{"error": {"type", "message"}}` with its status (SPEC 3),
including aiohttp's own 404/405/413, and nothing unexpected leaks a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from .streams.base import StoreUnavailable

log = logging.getLogger("sseserver.errors")

# Error types follow Anthropic's vocabulary, so clients need to know one set.
_TYPE_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_error",
    503: "overloaded_error",
}
# How long a client is asked to wait when the stream store (Redis) does not answer.
STORE_RETRY_AFTER: Final = "2"


CLIENT_CLOSED_REQUEST: Final = 499


class ApiError(Exception):
    """A refusal to answer with a JSON error body; raised by handlers and validation."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type or _TYPE_BY_STATUS.get(status, "api_error")
        self.message = message
        self.headers = dict(headers or {})


def error_response(error: ApiError) -> web.Response:
    return web.json_response(
        {"error": {"type": error.type, "message": error.message}},
        status=error.status,
        headers=error.headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A check before the route: None to go on, a response to answer at once, or ApiError.
Check = Callable[[web.Request], web.StreamResponse | None]


def json_errors(*checks: Check) -> Middleware:
    """The app's one middleware: `checks` in order, then the route, with every refusal
    turned into a JSON error. One middleware, not one per concern: each would hold a
    coroutine frame (~250 B) for as long as a stream is open, and aiohttp wraps every
    request's handler once per middleware (issue 6)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            for check in checks:
                answer = check(request)
                if answer is not None:
                    return answer
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except StoreUnavailable as exc:
            # Before a response was started: nothing was begun, so say so and when to retry.
            log.warning("%s %s: %s", request.method, request.path, exc)
            return error_response(ApiError(
                503,
                "The stream store is unreachable; try again shortly.",
                type="store_unavailable",
                headers={"Retry-After": STORE_RETRY_AFTER},
            ))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            message = {
                404: "No such route.", 405: f"{request.method} is not allowed here."
            }.get(exc.status, exc.reason)
            return error_response(ApiError(exc.status, message, headers=headers))
        except ConnectionError:
            # The client left before its answer could be sent (e.g. during prepare()): not a
            # server error. 499 is nginx's "client closed request", seen only in the access log.
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            return error_response(ApiError(500, "Internal server error.", type="api_error"))

    return middleware
