"""Access control over HTTP, with the whole app: with `--access-token`, /api/ and /metrics
need `Authorization: Bearer T` or the cookie that `GET /?token=T` sets; the page, its static
files and /healthz do not. And the warning printed when the API is exposed without a token.
The rules one by one, without HTTP: tests/test_auth.py."""

from __future__ import annotations

import dataclasses
import json
from http.cookies import SimpleCookie
from typing import Final

import pytest

from sseserver.__main__ import exposure_warning
from sseserver.auth import COOKIE_NAME, WRONG_COOKIE, cookie_value
from sseserver.config import Settings

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.http_client import request
from .support.processes import Processes
from .support.sse_client import open_sse

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"


def _assert_401(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 401, body
    assert headers["WWW-Authenticate"].startswith("Bearer")
    error = json.loads(body)["error"]
    assert error["type"] == "authentication_error"
    assert "/?token=" in error["message"]


@pytest.fixture
async def guarded(start_server: StartServer, fake_anthropic: FakeAnthropic) -> RunningServer:
    return await start_server(fake=fake_anthropic, access_token=TOKEN)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sse?message=hi"),
        ("POST", "/api/streams"),
        ("GET", "/api/streams/abc"),
        ("DELETE", "/api/streams/abc"),
        ("GET", "/api/nothing-here"),
        ("GET", "/metrics"),
    ],
)
@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer wrong-token-0123456789abcdef"}, id="wrong"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="other-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="longer"),
        pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, id="prefix"),
        # The cookie holds an HMAC of the token, so the token itself is no cookie.
        pytest.param({"Cookie": f"{COOKIE_NAME}={TOKEN}"}, id="raw-token-as-cookie"),
    ],
)
async def test_api_and_metrics_refuse_without_the_token(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, method: str, path: str,
    auth: dict[str, str],
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]} if method == "POST" else None
    _assert_401(*await request(method, guarded.url + path, headers=auth, json_body=body))
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/healthz"])
async def test_page_static_and_health_need_no_token(guarded: RunningServer, path: str) -> None:
    """The page holds no secret (the key never reaches it); health is for probes."""
    status, _, _ = await request("GET", guarded.url + path)
    assert status == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_bearer_token_opens_the_api(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, scheme: str
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Hello", " you"]))
    auth = {"Authorization": f"{scheme} {TOKEN}"}
    async with await open_sse(guarded.url + "/api/sse?message=hi", headers=auth) as stream:
        await stream.read_all()
    assert stream.text == "Hello you"
    status, _, text = await request("GET", guarded.url + "/metrics", headers=auth)
    assert status == 200
    assert b"sseserver_generations_started_total 1.0" in text


async def test_token_in_the_page_url_sets_a_strict_cookie_and_redirects(
    guarded: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    status, headers, _ = await request("GET", f"{guarded.url}/?token={TOKEN}")
    assert status == 303
    assert headers["Location"] == "/"  # the token leaves the address bar
    assert headers["Cache-Control"] == "no-store"
    raw_cookie = headers["Set-Cookie"]
    cookie = SimpleCookie(raw_cookie)[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert TOKEN not in raw_cookie
    # The cookie opens the API, for EventSource (which cannot send headers) and fetch.
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    with_cookie = {"Cookie": f"{COOKIE_NAME}={cookie.value}"}
    async with await open_sse(guarded.url + "/api/sse?message=hi", headers=with_cookie) as s:
        await s.read_all()
    assert s.text == "ok"


@pytest.mark.parametrize(
    "headers",
    [
        # An <img src=".../api/sse?message=x"> on another port or a sibling subdomain:
        # same-site, so SameSite=Strict sends the cookie.
        pytest.param({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"}, id="same-site"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        # Same origin by Fetch Metadata wins over a forged-looking Origin, and vice versa.
        pytest.param({"Sec-Fetch-Site": "same-site", "Origin": "{url}"}, id="same-site-origin"),
        # A browser without Fetch Metadata: Origin is another port of the same host.
        pytest.param({"Origin": "http://127.0.0.1:1"}, id="origin-other-port"),
        pytest.param({"Origin": "null"}, id="origin-null"),
    ],
)
async def test_the_cookie_from_another_origin_starts_nothing(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, headers: dict[str, str]
) -> None:
    status, _, _ = await request("GET", f"{guarded.url}/?token={TOKEN}")
    assert status == 303
    cookie = f"{COOKIE_NAME}={cookie_value(TOKEN)}"
    sent = {name: value.format(url=guarded.url) for name, value in headers.items()}
    for method, path in (("GET", "/api/sse?message=x"), ("POST", "/api/streams"),
                         ("POST", "/api/chat")):
        body = {"messages": [{"role": "user", "content": "x"}]} if path == "/api/streams" else (
            {"id": "c", "messages": [{"id": "m", "role": "user",
                                      "parts": [{"type": "text", "text": "x"}]}]}
            if path == "/api/chat" else None)
        status, _, raw = await request(method, guarded.url + path,
                                       headers={"Cookie": cookie, **sent}, json_body=body)
        assert status == 403, raw
        error = json.loads(raw)["error"]
        assert error["type"] == "permission_error"
        assert "Bearer" in error["message"]
    assert fake_anthropic.requests == []
    # The same request with the bearer token is another program's, and is let in.
    fake_anthropic.enqueue(Reply(chunks=["bearer"]))
    async with await open_sse(
        guarded.url + "/api/sse?message=x", headers={"Authorization": f"Bearer {TOKEN}", **sent}
    ) as stream:
        await stream.read_all()
    assert stream.text == "bearer"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "same-origin"}, id="same-origin"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="typed-in"),
        pytest.param({"Origin": "{url}"}, id="own-origin"),
        pytest.param({}, id="no-browser-headers"),
    ],
)
async def test_the_cookie_from_the_page_itself_is_let_in(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, headers: dict[str, str]
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["mine"]))
    sent = {name: value.format(url=guarded.url) for name, value in headers.items()}
    async with await open_sse(
        guarded.url + "/api/sse?message=x",
        headers={"Cookie": f"{COOKIE_NAME}={cookie_value(TOKEN)}", **sent},
    ) as stream:
        await stream.read_all()
    assert stream.text == "mine"


async def test_wrong_token_in_the_page_url_leads_to_a_page_that_says_so(
    guarded: RunningServer,
) -> None:
    """No raw JSON page, no token left in the address: home, whose sign-in form says the
    token was wrong (the mark is read once)."""
    status, headers, _ = await request("GET", guarded.url + "/?token=wrong")
    assert (status, headers["Location"]) == (303, "/")
    cookies = SimpleCookie(headers["Set-Cookie"])
    assert COOKIE_NAME not in cookies
    mark = {"Cookie": f"{WRONG_COOKIE}={cookies[WRONG_COOKIE].value}"}
    status, headers, body = await request("GET", guarded.url + "/", headers=mark)
    assert status == 200
    assert b'data-access="wrong"' in body
    assert SimpleCookie(headers["Set-Cookie"])[WRONG_COOKIE]["max-age"] == "0"
    status, _, body = await request("GET", guarded.url + "/")
    assert b'data-access="sign-in"' in body


async def test_the_sign_in_form_posts_the_token_and_gets_the_cookie(
    guarded: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    status, headers, body = await request("POST", guarded.url + "/login",
                                          json_body={"token": TOKEN})
    assert status == 204, body
    cookie = SimpleCookie(headers["Set-Cookie"])[COOKIE_NAME]
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Strict")
    assert TOKEN not in headers["Set-Cookie"]
    with_cookie = {"Cookie": f"{COOKIE_NAME}={cookie.value}"}
    status, _, body = await request("GET", guarded.url + "/", headers=with_cookie)
    assert b'data-access="signed-in"' in body
    fake_anthropic.enqueue(Reply(chunks=["in"]))
    async with await open_sse(guarded.url + "/api/sse?message=hi", headers=with_cookie) as s:
        await s.read_all()
    assert s.text == "in"


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        pytest.param({"token": "wrong-token-0123456789abcdef"}, {}, 401,
                     "Wrong token: check it and try again.", id="wrong"),
        pytest.param({"token": ""}, {}, 401, "Wrong token: check it and try again.",
                     id="empty"),
        pytest.param({"token": 42}, {}, 400, 'The body must be {"token": "..."}.',
                     id="not-a-string"),
        pytest.param([TOKEN], {}, 400, 'The body must be {"token": "..."}.', id="a-list"),
        pytest.param(None, {"Content-Type": "application/x-www-form-urlencoded"}, 415,
                     "The body must be sent as Content-Type: application/json.", id="a-form"),
    ],
)
async def test_a_refused_sign_in_says_why_and_sets_no_cookie(
    guarded: RunningServer, body: object, headers: dict[str, str], status: int, message: str,
) -> None:
    if body is None:
        answer = await request("POST", guarded.url + "/login", headers=headers,
                               data=f"token={TOKEN}".encode())
    else:
        answer = await request("POST", guarded.url + "/login", json_body=body)
    assert answer.status == status
    assert json.loads(answer.body)["error"]["message"] == message
    assert "Set-Cookie" not in answer.headers


async def test_sign_in_without_a_configured_token_is_404(start_server: StartServer) -> None:
    server = await start_server()
    answer = await request("POST", server.url + "/login", json_body={"token": TOKEN})
    assert answer.status == 404
    assert json.loads(answer.body)["error"]["message"] == (
        "This server has no access token: there is nothing to sign in to.")
    _, _, page = await request("GET", server.url + "/")
    assert b'data-access="open"' in page


async def test_without_a_configured_token_everything_is_open(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["open"]))
    async with await open_sse(server.url + "/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.text == "open"
    status, headers, _ = await request("GET", server.url + "/?token=anything")
    assert status == 200
    assert "Set-Cookie" not in headers
    status, _, _ = await request("GET", server.url + "/metrics")
    assert status == 200


# ---- the start-up warning ----


def test_exposure_warning_names_access_token() -> None:
    anthropic = Settings(provider="anthropic", anthropic_api_key="k")
    for host in ("0.0.0.0", "::", "", "192.0.2.1", "chat.example.com"):
        warning = exposure_warning(dataclasses.replace(anthropic, host=host))
        assert warning is not None
        assert "--access-token" in warning
        assert "spend your API key" in warning
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposure_warning(dataclasses.replace(anthropic, host=host)) is None
    with_token = dataclasses.replace(anthropic, host="0.0.0.0", access_token=TOKEN)
    assert exposure_warning(with_token) is None
    assert exposure_warning(Settings(provider="demo", host="0.0.0.0")) is None


async def test_exposure_warning_is_printed_at_start(processes: Processes) -> None:
    """192.0.2.1 (TEST-NET-1) is never assigned here: the bind fails, after the warning,
    without a packet leaving the machine."""
    code, _, stderr = await processes.command(
        "--host", "192.0.2.1", "--port", "0", env={"ANTHROPIC_API_KEY": "sk-ant-not-a-real-key"}
    )
    assert "!!! listening on 192.0.2.1 with the anthropic provider" in stderr
    assert "--access-token" in stderr
    assert "sk-ant-not-a-real-key" not in stderr
    assert code == 1  # cannot listen there
