"""Access control (auth.py) on aiohttp's own request objects: which paths need the token,
which credentials prove it, and what `/?token=` answers. Over HTTP, with the whole app:
tests/test_auth_functional.py."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Final

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sseserver.app_keys import SETTINGS
from sseserver.auth import (
    COOKIE_NAME,
    WRONG_COOKIE,
    cookie_value,
    is_protected,
    login_with_query_token,
    require_token,
    token_matches,
)
from sseserver.config import Settings
from sseserver.errors import Unauthorized

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"


def _request(path: str, headers: Mapping[str, str] | None = None, *,
             token: str | None = TOKEN, https: bool = False) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(access_token=token)
    return make_mocked_request(
        "GET", path, headers=headers, app=app,
        sslcontext=ssl.create_default_context() if https else None,
    )


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/api/sse", True),
        ("/api/streams/abc", True),
        ("/api/", True),
        ("/api/no-such-route", True),
        ("/metrics", True),
        ("/", False),
        ("/static/app.js", False),
        ("/healthz", False),
        ("/metrics/", False),
        ("/apis", False),
    ],
)
def test_the_api_and_metrics_are_protected_the_page_and_health_are_not(
    path: str, protected: bool
) -> None:
    assert is_protected(path) is protected


def test_the_cookie_is_derived_from_the_token_not_the_token() -> None:
    value = cookie_value(TOKEN)
    assert value == cookie_value(TOKEN)  # survives a restart with the same token
    assert value != cookie_value(TOKEN + "x")  # a new token invalidates old cookies
    assert TOKEN not in value
    assert len(value) == 64
    assert int(value, 16) >= 0  # hex: a valid cookie value without quoting


@pytest.mark.parametrize(
    ("headers", "matches"),
    [
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, True, id="bearer"),
        pytest.param({"Authorization": f"bearer {TOKEN}"}, True, id="scheme-any-case"),
        pytest.param({"Authorization": f"Bearer  {TOKEN} "}, True, id="spaces-around"),
        pytest.param({"Cookie": f"{COOKIE_NAME}={cookie_value(TOKEN)}"}, True, id="cookie"),
        pytest.param({}, False, id="nothing"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, False, id="other-scheme"),
        pytest.param({"Authorization": TOKEN}, False, id="no-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, False, id="longer"),
        pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, False, id="prefix"),
        pytest.param({"Authorization": "Bearer é-ü"}, False, id="non-ascii"),
        pytest.param({"Cookie": f"{COOKIE_NAME}={TOKEN}"}, False, id="raw-token-as-cookie"),
        pytest.param({"Cookie": f"{COOKIE_NAME}={cookie_value('other')}"}, False,
                     id="cookie-of-another-token"),
        pytest.param({"Cookie": f"other={cookie_value(TOKEN)}"}, False,
                     id="cookie-of-another-name"),
    ],
)
def test_what_proves_the_token(headers: dict[str, str], matches: bool) -> None:
    assert token_matches(_request("/api/sse", headers), TOKEN) is matches


def test_a_protected_path_without_the_token_is_refused_with_a_bearer_challenge() -> None:
    with pytest.raises(Unauthorized) as refused:
        require_token(_request("/api/sse"))
    assert refused.value.status == 401
    assert refused.value.headers == {"WWW-Authenticate": 'Bearer realm="sseserver"'}
    assert "/?token=TOKEN" in refused.value.message


@pytest.mark.parametrize(
    ("path", "headers", "token"),
    [
        pytest.param("/api/sse", {"Authorization": f"Bearer {TOKEN}"}, TOKEN, id="with-token"),
        pytest.param("/healthz", {}, TOKEN, id="unprotected-path"),
        pytest.param("/api/sse", {}, None, id="no-token-configured"),
    ],
)
def test_what_goes_on_to_the_route(path: str, headers: dict[str, str], token: str | None
                                   ) -> None:
    require_token(_request(path, headers, token=token))  # no refusal


@pytest.mark.parametrize(
    ("path", "token"),
    [
        pytest.param("/", TOKEN, id="no-token-parameter"),
        pytest.param(f"/?token={TOKEN}", None, id="no-token-configured"),
    ],
)
def test_the_page_is_served_when_no_token_is_presented_or_none_needed(
    path: str, token: str | None
) -> None:
    assert login_with_query_token(_request(path, token=token)) is None


@pytest.mark.parametrize("presented", ["wrong", "", TOKEN[:-1], TOKEN + "x"])
def test_a_wrong_token_in_the_page_url_leaves_the_address_and_opens_nothing(
    presented: str,
) -> None:
    """Redirected home like the right one (the token leaves the address bar and the
    history), with no access cookie: a mark the page reads to say "wrong token"."""
    response = login_with_query_token(_request(f"/?token={presented}"))
    assert response is not None
    assert (response.status, response.headers["Location"]) == (303, "/")
    assert COOKIE_NAME not in response.cookies
    mark = response.cookies[WRONG_COOKIE]
    assert mark.value == "1"
    assert mark["httponly"] is True


@pytest.mark.parametrize("https", [False, True])
def test_the_right_token_redirects_home_with_a_strict_cookie(https: bool) -> None:
    response = login_with_query_token(_request(f"/?token={TOKEN}", https=https))
    assert response is not None
    assert response.status == 303
    assert response.headers["Location"] == "/"  # the token leaves the address bar
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = response.cookies[COOKIE_NAME]
    assert TOKEN not in cookie.OutputString()
    assert cookie.value == cookie_value(TOKEN)
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) > 0
    assert bool(cookie["secure"]) is https  # over HTTPS, never sent over plain HTTP
