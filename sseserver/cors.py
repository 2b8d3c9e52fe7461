"""CORS: off unless `--cors-origins` names origins; then only those may call `/api/`.

Why not aiohttp-cors: it wants every route registered with it, and what we need is two
small pieces: answer a preflight (`OPTIONS` with `Access-Control-Request-Method`) for a
listed origin, and add `Access-Control-Allow-Origin` to that origin's API answers. The
latter is an on_response_prepare hook, because an SSE response sends its headers at
`prepare()`, long before any middleware sees it returned.

Credentials are not allowed cross-site: the access cookie is SameSite=Strict anyway, so a
page on another origin sends `Authorization: Bearer` (with fetch; `EventSource` cannot set
headers, so a cross-origin page reads the stream with fetch's body reader). A preflight from
an origin not listed gets 403; with CORS off, preflights are answered like any unknown
method (405), without CORS headers, which is what makes a browser refuse.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from .app_keys import SETTINGS
from .errors import Forbidden

ALLOW_METHODS: Final = "GET, POST, DELETE"
ALLOW_HEADERS: Final = "Authorization, Content-Type, Last-Event-ID"
EXPOSE_HEADERS: Final = "Location, Retry-After"
PREFLIGHT_MAX_AGE: Final = "600"


def _listed_origin(request: web.Request) -> str | None:
    """The request's Origin when it may call this route cross-site, else None."""
    origins = request.app[SETTINGS].cors_origins
    origin = request.headers.get("Origin")
    if not origins or origin is None or not request.path.startswith("/api/"):
        return None
    return origin if origin in origins else None


def cors_preflight(request: web.Request) -> web.Response | None:
    """A check (middleware.json_errors) before the routes: answers a preflight, else None."""
    is_preflight = (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and request.app[SETTINGS].cors_origins
        and request.path.startswith("/api/")
    )
    if not is_preflight:
        return None
    origin = _listed_origin(request)
    if origin is None:
        raise Forbidden("This origin may not call the API.")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        "Vary": "Origin",
    })


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.app[SETTINGS].cors_origins or not request.path.startswith("/api/"):
        return
    response.headers.setdefault("Vary", "Origin")  # answers differ by Origin: caches must know
    origin = _listed_origin(request)
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
