"""CORS (cors.py) on aiohttp's own request objects: which preflights are answered, refused or
left to the routes, and which answers say which origin may read them. Over HTTP, with the
whole app: tests/test_cors_functional.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sseserver.app_keys import SETTINGS
from sseserver.config import Settings
from sseserver.cors import add_cors_headers, cors_preflight
from sseserver.errors import Forbidden

ORIGIN: Final = "https://chat.example.com"
OTHER: Final = "https://evil.example"
PREFLIGHT: Final = {"Access-Control-Request-Method": "POST"}


def _request(method: str, path: str, headers: Mapping[str, str], *,
             origins: tuple[str, ...] = (ORIGIN,)) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(cors_origins=origins)
    return make_mocked_request(method, path, headers=headers, app=app)


def _items(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def test_a_listed_origins_preflight_is_answered() -> None:
    response = cors_preflight(_request("OPTIONS", "/api/streams",
                                       {"Origin": ORIGIN, **PREFLIGHT}))
    assert response is not None
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    # What the page's fetch and EventSource calls need: its methods and headers.
    assert _items(response.headers["Access-Control-Allow-Methods"]) >= {"get", "post", "delete"}
    assert _items(response.headers["Access-Control-Allow-Headers"]) >= {
        "authorization", "content-type", "last-event-id"}
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": OTHER, **PREFLIGHT}, id="unlisted-origin"),
        pytest.param({"Origin": ORIGIN + ":8443", **PREFLIGHT}, id="other-port"),
        pytest.param({"Origin": "http://chat.example.com", **PREFLIGHT}, id="other-scheme"),
        pytest.param(PREFLIGHT, id="no-origin"),
    ],
)
def test_a_preflight_from_anywhere_else_is_403(headers: dict[str, str]) -> None:
    with pytest.raises(Forbidden) as refused:
        cors_preflight(_request("OPTIONS", "/api/streams", headers))
    assert refused.value.status == 403
    assert refused.value.message == "This origin may not call the API."


@pytest.mark.parametrize(
    ("method", "path", "headers", "origins"),
    [
        pytest.param("OPTIONS", "/api/streams", {"Origin": ORIGIN, **PREFLIGHT}, (),
                     id="cors-off"),
        pytest.param("OPTIONS", "/api/streams", {"Origin": ORIGIN}, (ORIGIN,),
                     id="options-without-request-method"),
        pytest.param("POST", "/api/streams", {"Origin": ORIGIN, **PREFLIGHT}, (ORIGIN,),
                     id="not-options"),
        pytest.param("OPTIONS", "/healthz", {"Origin": ORIGIN, **PREFLIGHT}, (ORIGIN,),
                     id="not-the-api"),
    ],
)
def test_what_is_no_preflight_goes_on_to_the_routes(
    method: str, path: str, headers: dict[str, str], origins: tuple[str, ...]
) -> None:
    """With CORS off, the route answers 405 without CORS headers: the browser refuses."""
    assert cors_preflight(_request(method, path, headers, origins=origins)) is None


async def _answer_headers(path: str, headers: Mapping[str, str],
                          origins: tuple[str, ...] = (ORIGIN,),
                          answer: web.StreamResponse | None = None) -> dict[str, str]:
    response = answer if answer is not None else web.json_response({"ok": True})
    await add_cors_headers(_request("GET", path, headers, origins=origins), response)
    return dict(response.headers)


async def test_a_listed_origin_may_read_api_answers() -> None:
    headers = await _answer_headers("/api/streams/abc", {"Origin": ORIGIN})
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    # The page reads where a stream lives and when to retry.
    assert _items(headers["Access-Control-Expose-Headers"]) >= {"location", "retry-after"}
    assert headers["Vary"] == "Origin"


async def test_another_origins_api_answer_only_tells_caches_it_varies() -> None:
    headers = await _answer_headers("/api/streams/abc", {"Origin": OTHER})
    assert not any(name.startswith("Access-Control-") for name in headers)
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    ("path", "origins"),
    [
        pytest.param("/healthz", (ORIGIN,), id="not-the-api"),
        pytest.param("/", (ORIGIN,), id="the-page"),
        pytest.param("/api/streams/abc", (), id="cors-off"),
    ],
)
async def test_other_answers_are_left_alone(path: str, origins: tuple[str, ...]) -> None:
    headers = await _answer_headers(path, {"Origin": ORIGIN}, origins)
    assert not any(name.startswith("Access-Control-") for name in headers)
    assert "Vary" not in headers


async def test_a_preflight_answer_keeps_its_own_headers() -> None:
    preflight = cors_preflight(_request("OPTIONS", "/api/streams",
                                        {"Origin": ORIGIN, **PREFLIGHT}))
    assert preflight is not None
    headers = await _answer_headers("/api/streams", {"Origin": ORIGIN}, answer=preflight)
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Expose-Headers" not in headers  # not added on top
    assert headers["Vary"] == "Origin"
