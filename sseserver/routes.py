"""HTTP handlers: the page, the two ways to stream (/api/sse and /api/streams), health,
metrics, and the fallback for everything else (guard.py).

A request goes: handler → validation → Generations.start (generations.py, which runs the
provider into the store) → serve_stream (subscriber.py, run by serving.py, which replays
the store and then follows the stream through the fan-out, fanout.py). Every route but the
SSE one is `guarded`; the SSE one guards itself, so an open stream holds one coroutine of
ours.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from . import identity
from .app_keys import (
    BODY_BUDGET,
    BUDGETS,
    GENERATIONS,
    METRICS,
    MODELS,
    PROVIDER,
    SETTINGS,
    STATIC_ROOT,
    STORE,
    VERIFIER,
)
from .attachments import DOCUMENT_TYPES, IMAGE_TYPES, MAX_ATTACHMENTS
from .auth import WRONG_COOKIE, access_state, login_with_query_token, sign_in
from .bodies import read_body, require_json
from .config import Settings
from .errors import NotFound
from .forwarded import client_address
from .guard import guarded
from .ids import is_stream_id
from .ownership import may_stop
from .providers import GenerationRequest
from .providers.reachability import Reachability
from .store.base import Cancel
from .subscriber import serve_stream
from .tools.loop import offered_tools
from .uploads import read_request
from .validation import request_from_json

# What the page is allowed to load: only this origin, and no inline script.
PAGE_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
routes = web.RouteTableDef()


@routes.get("/")
@guarded
async def index(request: web.Request) -> web.Response:
    """The page is served without the access token (it holds no secret); `/?token=T`
    sets the access cookie and redirects here (auth.py); after a wrong one, the page's
    sign-in form says so."""
    login = login_with_query_token(request)
    verifier = request.app.get(VERIFIER)
    if login is None and verifier is not None:  # users: the token is a JWT
        login = await identity.login(request, verifier)
    if login is not None:
        return login
    access = access_state(request)
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
            "access": access,
        },
    )
    if WRONG_COOKIE in request.cookies:
        response.del_cookie(WRONG_COOKIE, path="/")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@routes.post("/login")
@guarded
async def login(request: web.Request) -> web.Response:
    """The page's sign-in form: `{"token": T}` as JSON (a cross-site form cannot send it
    without a preflight) → 204 and the access cookie, or 401 "Wrong token"."""
    require_json(request)
    async with read_body(request, request.app[BODY_BUDGET], request.app[SETTINGS]) as body:
        return sign_in(request, body)


@routes.get("/static/{path:.+}")
@guarded
async def static_file(request: web.Request) -> web.FileResponse:
    """The client's JS and CSS. Our own handler (not add_static) so a miss is a JSON 404
    like every other, and nothing outside the static folder can be named."""
    root = request.app[STATIC_ROOT]
    try:
        path = (root / request.match_info["path"]).resolve()
        found = path.is_relative_to(root.resolve()) and path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL
        found = False
    if not found:
        raise NotFound("No such file.")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


@routes.get("/healthz")
@guarded
async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    provider = request.app[PROVIDER]
    # degraded: the stream store (Redis) does not answer, and new streams get 503; or the
    # latest upstream requests could not reach Claude's API.
    reason = None if await store.healthy() else "the stream store does not answer"
    reachability = getattr(provider, "reachability", None)
    if reason is None and isinstance(reachability, Reachability):
        reason = reachability.problem()
    body: dict[str, Any] = {
        "status": "ok" if reason is None else "degraded",
        "provider": provider.name,
        "active_streams": request.app[GENERATIONS].active,
        "backend": store.backend,
        "capabilities": capabilities(request.app[SETTINGS], request.app[MODELS].snapshot()),
    }
    if reason is not None:
        body["reason"] = reason
    return web.json_response(body)


def capabilities(settings: Settings, models: dict[str, Any]) -> dict[str, Any]:
    """What requests may ask for here, so a page shows only the toggles that work
    (docs/protocol.md, "Thinking, tools and caching"), and which tools a reply may call,
    so a client knows which ones it must answer. The thinking bound is the largest
    budget a request can use: the operator's, and below the largest max_tokens. MCP
    servers are named, never their URLs or tokens; `models` is what each allowed model
    can do, once known (providers/models.py)."""
    thinking = min(settings.max_thinking_tokens, settings.max_tokens - 1)
    return {
        "thinking": {"max_tokens": thinking} if settings.max_thinking_tokens else False,
        "web_search": {"max_uses": settings.web_search} if settings.web_search else False,
        "web_fetch": {"max_uses": settings.web_fetch} if settings.web_fetch else False,
        "code_execution": settings.code_execution,
        "tool_search": settings.tool_search,
        "mcp_servers": [server.name for server in settings.mcp_servers],
        "compaction": settings.compaction,
        "output_schemas": [schema.name for schema in settings.output_schemas],
        "models": models,
        "prompt_cache": settings.prompt_cache,
        "client_system": settings.client_system,
        "tools": [
            {"name": spec.name, "runs": "server" if spec.handler else "client",
             "needs_approval": spec.needs_approval}
            for spec in offered_tools(settings)
        ],
        # A page refuses a file over these before uploading it (protocol.md, "Attachments").
        "attachments": {
            "max_bytes": settings.max_attachment_bytes,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_count": MAX_ATTACHMENTS,
            "image_types": list(IMAGE_TYPES),
            "document_types": list(DOCUMENT_TYPES),
            "citations": settings.document_citations,
        },
    }


@routes.get("/metrics")
@guarded
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; behind the access token when one is set."""
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


# The simple form (one GET starts a generation and streams it) and a stream by its id; HEAD
# must not start a generation.
routes.get("/api/sse", allow_head=False)(serve_stream)
routes.get("/api/streams/{id}", allow_head=False)(serve_stream)


@routes.post("/api/streams")
@guarded
async def create_stream(request: web.Request) -> web.Response:
    require_json(request)
    generation = await read_request(request, request_from_json, _itself)
    # Nothing is asked of the upstream until the stream's first subscriber comes.
    stream_id = await _start(request, generation, wait_for_subscriber=True)
    url = f"/api/streams/{stream_id}"
    return web.json_response(
        {"id": stream_id, "url": url}, status=201, headers={"Location": url}
    )


@routes.delete("/api/streams/{id}")
@guarded
async def delete_stream(request: web.Request) -> web.Response:
    stream_id = _path_stream_id(request)
    if not await may_stop(request, request.app[STORE], stream_id):
        raise NotFound  # another user's: as if it were not held (ownership.py)
    # Idempotent: a stream that has ended is fine too; one never held is a 404.
    if await request.app[GENERATIONS].cancel(stream_id) is Cancel.UNKNOWN:
        raise NotFound
    return web.Response(status=204)


def _itself(generation: GenerationRequest) -> GenerationRequest:
    return generation


@routes.get("/api/usage")
@guarded
async def usage(request: web.Request) -> web.Response:
    """The caller's tokens in this budget window and what is left (budgets.py)."""
    budgets = request.app.get(BUDGETS)
    user = identity.request_user(request)
    if budgets is None or user is None:
        raise NotFound(
            "This server has no users; usage is counted per user (--jwt-jwks-url or "
            "--jwt-secret-file)."
        )
    return web.json_response(await budgets.usage(user), headers={"Cache-Control": "no-store"})


def _path_stream_id(request: web.Request) -> str:
    stream_id = request.match_info["id"]
    if not is_stream_id(stream_id):
        raise NotFound
    return stream_id


async def _start(
    request: web.Request, generation: GenerationRequest, *, wait_for_subscriber: bool = False
) -> str:
    """Start a generation, or refuse with the limit's status. The client is the peer
    address, or the one a trusted proxy forwarded (forwarded.py)."""
    return await request.app[GENERATIONS].start(
        generation, client=client_address(request), user=identity.request_user(request),
        wait_for_subscriber=wait_for_subscriber,
    )
