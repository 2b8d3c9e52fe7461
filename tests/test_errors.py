"""The exception tree (errors.py) as a client sees it: each refusal raised in a route of a
tiny aiohttp app, guarded as every route of ours is (guard.py), answers with its status,
its JSON error, its Retry-After, and is counted under its metric label or not at all.

The expected values are the wire contract (docs/protocol.md, "Errors"), written out here,
not read from the classes: a change to a class shows up as a failing row.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from sseserver import errors
from sseserver.app_keys import METRICS, SETTINGS
from sseserver.config import Settings
from sseserver.errors import (
    AtCapacity,
    BadRequest,
    BadSignature,
    BodiesFull,
    BudgetExceeded,
    ClientLimit,
    Forbidden,
    HeadersTooLarge,
    InvalidToken,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    Refused,
    RequestTimeout,
    ServerError,
    ShuttingDown,
    SSEServerError,
    StoreDown,
    StoreUnavailable,
    TokenExpired,
    TokenMissing,
    TokenNotYetValid,
    TokenRefused,
    TooLarge,
    TooManyConnections,
    Unauthorized,
    UnsupportedMediaType,
    UriTooLong,
    WrongAudience,
    WrongIssuer,
)
from sseserver.guard import fallback, guarded
from sseserver.metrics import Metrics

from .support.metrics_text import parse, value

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class Answer(NamedTuple):
    status: int
    type: str
    message: str
    retry_after: str | None
    counted_as: str | None


ANSWERS: dict[type[Refused], Answer] = {
    BadRequest: Answer(400, "invalid_request_error", "The request was refused.", None, None),
    Unauthorized: Answer(
        401, "authentication_error",
        "This server needs its access token: sign in on the page (or open /?token=TOKEN "
        "once in this browser), or send 'Authorization: Bearer TOKEN'.",
        None, "unauthorized",
    ),
    TokenRefused: Answer(401, "authentication_error", "The token was refused.", None,
                         "unauthorized"),
    TokenMissing: Answer(
        401, "token_missing",
        "This server needs a token: send 'Authorization: Bearer TOKEN', or open "
        "/?token=TOKEN once in this browser.", None, "unauthorized",
    ),
    TokenExpired: Answer(401, "token_expired", "The token has expired.", None, "unauthorized"),
    TokenNotYetValid: Answer(401, "token_not_yet_valid", "The token is not valid yet (nbf).",
                             None, "unauthorized"),
    BadSignature: Answer(401, "bad_signature", "The token's signature does not verify.", None,
                         "unauthorized"),
    WrongAudience: Answer(401, "wrong_audience", "The token is not meant for this server (aud).",
                          None, "unauthorized"),
    WrongIssuer: Answer(
        401, "wrong_issuer", "The token comes from an issuer this server does not trust (iss).",
        None, "unauthorized",
    ),
    InvalidToken: Answer(401, "invalid_token", "The token cannot be used here.", None,
                         "unauthorized"),
    Forbidden: Answer(403, "permission_error", "The request was refused.", None, None),
    NotFound: Answer(404, "not_found_error", "No such stream.", None, None),
    MethodNotAllowed: Answer(405, "method_not_allowed", "The request was refused.", None, None),
    RequestTimeout: Answer(
        408, "timeout_error", "The request body did not arrive in time.", None, None
    ),
    TooLarge: Answer(413, "request_too_large", "The request was refused.", None, None),
    UriTooLong: Answer(414, "request_too_large", "The request was refused.", None, None),
    HeadersTooLarge: Answer(431, "request_too_large", "The request was refused.", None, None),
    UnsupportedMediaType: Answer(
        415, "unsupported_media_type", "The request was refused.", None, None
    ),
    ClientLimit: Answer(
        429, "rate_limit_error",
        "You have as many replies running as this server allows; wait for one to end.",
        "5", "client_limit",
    ),
    BudgetExceeded: Answer(
        429, "budget_exceeded", "You have used this window's budget of tokens.", None, "budget",
    ),
    AtCapacity: Answer(
        503, "overloaded_error", "The server is at capacity; try again shortly.", "5",
        "capacity",
    ),
    BodiesFull: Answer(
        503, "overloaded_error",
        "The server is receiving too many requests at once; try again shortly.", "1",
        "body_memory",
    ),
    TooManyConnections: Answer(
        503, "overloaded_error", "The server has too many open connections; try again shortly.",
        "5", "connections",
    ),
    ShuttingDown: Answer(
        503, "overloaded_error", "The server is shutting down; try again in a moment.", "2",
        "shutting_down",
    ),
    Overloaded: Answer(
        503, "overloaded_error", "The server is busy; try again in a moment.", "1", "overload",
    ),
    StoreDown: Answer(
        503, "store_unavailable", "The stream store is unreachable; try again shortly.", "2",
        None,
    ),
    ServerError: Answer(500, "api_error", "Internal server error.", None, None),
}
LABELS = ("capacity", "client_limit", "shutting_down", "overload", "unauthorized", "budget")


def _app(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
         settings: Settings | None = None) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings or Settings()
    app[METRICS] = Metrics()
    app.router.add_get("/", guarded(handler))
    app.router.add_post("/api/things", guarded(handler))
    app.router.add_route("*", r"/{tail:[\s\S]*}", fallback)
    return app


def _raising(exc: BaseException) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    return handler


def _refused_counts(app: web.Application) -> dict[str, float]:
    samples = parse(app[METRICS].render()[0].decode())
    return {label: value(samples, "sseserver_refused_total", reason=label) for label in LABELS}


async def _get(client: Client) -> tuple[int, dict[str, str], Any]:
    async with client.get("/") as response:
        return response.status, dict(response.headers), await response.json()


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    return found.union(*(_all_subclasses(sub) for sub in found))


def test_every_refusal_has_its_row() -> None:
    """A new refusal must say here what its answer is."""
    assert _all_subclasses(Refused) == set(ANSWERS)


def test_every_exception_is_an_sseserver_error() -> None:
    """One `except SSEServerError` catches whatever sseserver raises on purpose."""
    defined = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, BaseException) and obj.__module__ == errors.__name__]
    assert len(defined) > len(ANSWERS)
    assert all(issubclass(cls, SSEServerError) for cls in defined)


@pytest.mark.parametrize("refusal", list(ANSWERS), ids=lambda cls: cls.__name__)
async def test_a_refusal_answers_with_its_status_json_and_retry_after(
    aiohttp_client: MakeClient, refusal: type[Refused]
) -> None:
    expected = ANSWERS[refusal]
    app = _app(_raising(refusal()))
    client = await aiohttp_client(app)
    status, headers, body = await _get(client)
    assert status == expected.status
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert body == {"error": {"type": expected.type, "message": expected.message}}
    assert headers.get("Retry-After") == expected.retry_after
    counts = _refused_counts(app)
    assert counts == {label: float(label == expected.counted_as) for label in LABELS}


async def test_a_refusal_keeps_its_message_and_headers(aiohttp_client: MakeClient) -> None:
    refusal = ClientLimit("Slow down.", headers={"Retry-After": "9", "X-Why": "test"})
    status, headers, body = await _get(await aiohttp_client(_app(_raising(refusal))))
    assert status == 429
    assert body == {"error": {"type": "rate_limit_error", "message": "Slow down."}}
    assert headers["Retry-After"] == "9"  # the raiser's wins over the class's
    assert headers["X-Why"] == "test"


async def test_an_unreachable_store_is_a_503_with_retry_after(
    aiohttp_client: MakeClient,
) -> None:
    handler = _raising(StoreUnavailable("redis: connection refused"))
    status, headers, body = await _get(await aiohttp_client(_app(handler)))
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert body == {"error": {
        "type": "store_unavailable",
        "message": "The stream store is unreachable; try again shortly.",
    }}  # the backend's own words stay in the log


async def test_an_unexpected_exception_is_a_500_without_a_trace(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    handler = _raising(RuntimeError("secret internals"))
    with caplog.at_level(logging.ERROR, logger="sseserver.errors"):
        status, _, body = await _get(await aiohttp_client(_app(handler)))
    assert status == 500
    assert body == {"error": {"type": "api_error", "message": "Internal server error."}}
    assert "unexpected error in GET /" in caplog.text  # the trace is logged, not sent
    assert "secret internals" in caplog.text


@pytest.mark.parametrize(
    ("exc", "status", "type", "message"),
    [
        (web.HTTPNotFound(), 404, "not_found_error", "No such route."),
        (web.HTTPMethodNotAllowed("GET", ["POST"]), 405, "method_not_allowed",
         "GET is not allowed here."),
        (web.HTTPRequestEntityTooLarge(10, 20), 413, "request_too_large",
         "Request Entity Too Large"),
        (web.HTTPBadRequest(), 400, "invalid_request_error", "Bad Request"),
        (web.HTTPConflict(), 409, "api_error", "Conflict"),
    ],
)
async def test_aiohttps_own_errors_become_json_errors(
    aiohttp_client: MakeClient, exc: web.HTTPException, status: int, type: str, message: str
) -> None:
    got_status, headers, body = await _get(await aiohttp_client(_app(_raising(exc))))
    assert got_status == status
    assert body == {"error": {"type": type, "message": message}}
    if status == 405:
        assert headers["Allow"] == "POST"


async def test_a_redirect_is_not_an_error(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(_app(_raising(web.HTTPFound("/elsewhere"))))
    async with client.get("/", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/elsewhere"


async def test_a_client_that_left_is_logged_as_499(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(_app(_raising(ConnectionResetError())))
    async with client.get("/") as response:
        assert response.status == 499
        assert await response.read() == b""


async def test_checks_run_in_order_before_the_route(aiohttp_client: MakeClient) -> None:
    """A CORS preflight is answered before the token is asked for; then the token; then
    the route."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append("route")
        return web.json_response({"ok": True})

    settings = Settings(access_token="t" * 16, cors_origins=("https://app.example",))
    client = await aiohttp_client(_app(handler, settings))
    async with client.options("/api/things", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
    }) as response:
        assert response.status == 204  # without the token: browsers send none
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    async with client.post("/api/things") as response:
        assert response.status == 401
        assert (await response.json())["error"]["type"] == "authentication_error"
    assert seen == []
    async with client.post("/api/things", headers={"Authorization": "Bearer " + "t" * 16}) as r:
        assert await r.json() == {"ok": True}
    assert seen == ["route"]


@pytest.mark.parametrize(
    ("method", "path", "status", "allow", "message"),
    [
        ("GET", "/nowhere", 404, None, "No such route."),
        ("DELETE", "/", 405, "GET,HEAD", "DELETE is not allowed here."),
        ("GET", "/api/things", 405, "POST", "GET is not allowed here."),
        ("OPTIONS", "/api/things", 405, "POST", "OPTIONS is not allowed here."),
    ],
)
async def test_what_no_route_takes_is_a_json_404_or_405(
    aiohttp_client: MakeClient, method: str, path: str, status: int, allow: str | None,
    message: str,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise AssertionError("no route runs")

    client = await aiohttp_client(_app(handler))
    async with client.request(method, path) as response:
        assert response.status == status
        assert response.headers.get("Allow") == allow
        assert await response.json() == {"error": {
            "type": "not_found_error" if status == 404 else "method_not_allowed",
            "message": message,
        }}
