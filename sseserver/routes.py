"""HTTP handlers: the page, the two ways to stream (/api/sse and /api/streams), health,
metrics.

A request goes: handler → validation → Generations.start (streams/generations.py, which
runs the provider into the store) → serve_stream (subscriber.py, which reads the store and
writes SSE frames to the wire).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from .auth import login_with_query_token
from .config import Settings
from .errors import ApiError
from .keys import FOLLOWERS, GENERATIONS, METRICS, PROVIDER, SETTINGS, STATIC_ROOT, STORE
from .providers import GenerationRequest
from .streams.generations import AtCapacity, ClientLimit, ShuttingDown
from .subscriber import serve_stream
from .validation import request_from_json, request_from_query, resume_point

# What the page is allowed to load: only this origin, and no inline script (SPEC 7).
PAGE_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Seconds to wait before trying again: a demo or short reply frees its slot within that.
# Why a generation was refused: (status, metric label, message, Retry-After seconds).
_REFUSALS: Final[dict[type[Exception], tuple[int, str, str, str]]] = {
    AtCapacity: (503, "capacity", "The server is at capacity; try again shortly.", "5"),
    ClientLimit: (
        429, "client_limit",
        "You have as many replies running as this server allows; wait for one to end.", "5",
    ),
    # Two seconds: long enough for a restart, or for a balancer to pick another instance.
    ShuttingDown: (
        503, "shutting_down", "The server is shutting down; try again in a moment.", "2",
    ),
}
_STREAM_ID_MAX: Final = 64

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The page is served without the access token (it holds no secret); `/?token=T`
    sets the access cookie and redirects here (auth.py)."""
    login = login_with_query_token(request)
    if login is not None:
        return login
    settings = request.app[SETTINGS]
    provider = request.app[PROVIDER]
    response = aiohttp_jinja2.render_template(
        "index.html",
        request,
        {
            "provider": provider.name,
            "demo": provider.name == "demo",
            "model": settings.model,
            "models": list(settings.allowed_models),
            "max_tokens": settings.max_tokens,
            "static_url": "/static",
        },
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@routes.get("/static/{path:.+}")
async def static_file(request: web.Request) -> web.FileResponse:
    """The client's JS and CSS. Our own handler (not add_static) so a miss is a JSON 404
    like every other, and nothing outside the static folder can be named."""
    root = request.app[STATIC_ROOT]
    path = (root / request.match_info["path"]).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise ApiError(404, "No such file.")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response({
        # degraded: the stream store (Redis) does not answer; new streams get 503.
        "status": "ok" if await store.healthy() else "degraded",
        "provider": request.app[PROVIDER].name,
        "active_streams": request.app[GENERATIONS].active,
        "backend": store.backend,
        "capabilities": capabilities(request.app[SETTINGS]),
    })


def capabilities(settings: Settings) -> dict[str, Any]:
    """What requests may ask for here, so a page shows only the toggles that work
    (docs/protocol.md). The thinking bound is the largest budget a request can use: the
    operator's, and below the largest max_tokens."""
    thinking = min(settings.max_thinking_tokens, settings.max_tokens - 1)
    return {
        "thinking": {"max_tokens": thinking} if settings.max_thinking_tokens else False,
        "web_search": {"max_uses": settings.web_search} if settings.web_search else False,
        "prompt_cache": settings.prompt_cache,
    }


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format (SPEC 8); behind the access token when one is set."""
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


@routes.get("/api/sse", allow_head=False)  # HEAD must not start a generation
async def simple_stream(request: web.Request) -> web.StreamResponse:
    """The simple form: one GET starts a generation and streams it. An EventSource that
    reconnects sends Last-Event-ID, which names the stream, so it resumes that stream
    instead of starting a second generation."""
    resume = _resume_point(request)
    if resume is not None:
        return await _subscribe(request, *resume, reconnect=True)
    generation = request_from_query(request.query, request.app[SETTINGS])
    stream_id = await _start(request, generation)
    return await _subscribe(request, stream_id, 0, reconnect=False)


@routes.post("/api/streams")
async def create_stream(request: web.Request) -> web.Response:
    content_type = request.headers.get("Content-Type", "")
    # Requiring JSON makes a cross-site form post impossible without a CORS preflight.
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "The body must be sent as Content-Type: application/json.")
    generation = request_from_json(await request.read(), request.app[SETTINGS])
    stream_id = await _start(request, generation)
    url = f"/api/streams/{stream_id}"
    return web.json_response(
        {"id": stream_id, "url": url}, status=201, headers={"Location": url}
    )


@routes.get("/api/streams/{id}", allow_head=False)
async def get_stream(request: web.Request) -> web.StreamResponse:
    stream_id = _path_stream_id(request)
    resume = _resume_point(request)
    if resume is None:
        return await _subscribe(request, stream_id, 0, reconnect=False)
    if resume[0] != stream_id:
        raise ApiError(400, "Last-Event-ID names another stream.")
    return await _subscribe(request, stream_id, resume[1], reconnect=True)


@routes.delete("/api/streams/{id}")
async def delete_stream(request: web.Request) -> web.Response:
    stream_id = _path_stream_id(request)
    cancelled = await request.app[GENERATIONS].cancel(stream_id)
    # Not running: fine if it has ended (DELETE is idempotent), 404 if never held.
    if not cancelled and await request.app[STORE].read(stream_id, 2**31, wait=0) is None:
        raise ApiError(404, "No such stream.")
    return web.Response(status=204)


def _resume_point(request: web.Request) -> tuple[str, int] | None:
    return resume_point(request.headers.get("Last-Event-ID"), request.query.get("lastEventId"))


def _path_stream_id(request: web.Request) -> str:
    stream_id = request.match_info["id"]
    if len(stream_id) > _STREAM_ID_MAX or not all(c.isalnum() or c in "-_" for c in stream_id):
        raise ApiError(404, "No such stream.")
    return stream_id


async def _start(request: web.Request, generation: GenerationRequest) -> str:
    """Start a generation, or refuse with the limit's status (SPEC 3). The client is the
    peer address: no proxy header is trusted (README, "Security")."""
    try:
        return await request.app[GENERATIONS].start(generation, client=request.remote or "")
    except (AtCapacity, ClientLimit, ShuttingDown) as refusal:
        status, label, message, retry_after = _REFUSALS[type(refusal)]
        request.app[METRICS].refused.labels(label).inc()
        raise ApiError(status, message, headers={"Retry-After": retry_after}) from None


def _subscribe(
    request: web.Request, stream_id: str, start: int, *, reconnect: bool
) -> Coroutine[Any, Any, web.StreamResponse]:
    """serve_stream with the app's parts. Not a coroutine itself: a handler awaits
    serve_stream directly, one frame fewer held for as long as the stream is open."""
    app = request.app
    return serve_stream(
        request, app[STORE], app[SETTINGS], stream_id, start, app[METRICS], app[FOLLOWERS],
        reconnect=reconnect,
    )
