"""Access control, CORS and the security headers (SPEC 7, issue 5).

With `--access-token`, /api/ and /metrics need `Authorization: Bearer T` or the cookie
that `GET /?token=T` sets; the page, its static files and /healthz do not. CORS is off
unless `--cors-origins` names origins. The page has a strict CSP; every answer has nosniff.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
from http.cookies import SimpleCookie
from typing import Final

import aiohttp
import pytest

from sseserver.__main__ import configure_logging, exposure_warning
from sseserver.auth import COOKIE_NAME
from sseserver.config import Settings
from sseserver.routes import PAGE_CSP

from .conftest import RunningServer, StartServer
from .fake_anthropic import FakeAnthropic, Reply
from .server_process import ROOT, clean_env
from .sse_client import open_sse

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"
ORIGIN: Final = "https://chat.example.com"


async def _request(
    server: RunningServer, method: str, path: str, *, headers: dict[str, str] | None = None,
    json_body: object = None,
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(
        method, server.url + path, headers=headers, json=json_body, allow_redirects=False
    ) as response:
        return response.status, dict(response.headers), await response.read()


def _assert_401(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 401, body
    assert headers["WWW-Authenticate"].startswith("Bearer")
    error = json.loads(body)["error"]
    assert error["type"] == "authentication_error"
    assert "/?token=" in error["message"]


@pytest.fixture
async def guarded(start_server: StartServer, fake_anthropic: FakeAnthropic) -> RunningServer:
    return await start_server(fake=fake_anthropic, access_token=TOKEN)


# ---- the token ----


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
    _assert_401(*await _request(guarded, method, path, headers=auth, json_body=body))
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/healthz"])
async def test_page_static_and_health_need_no_token(guarded: RunningServer, path: str) -> None:
    """The page holds no secret (the key never reaches it); health is for probes."""
    status, _, _ = await _request(guarded, "GET", path)
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
    status, _, text = await _request(guarded, "GET", "/metrics", headers=auth)
    assert status == 200
    assert b"sseserver_generations_started_total 1.0" in text


async def test_token_in_the_page_url_sets_a_strict_cookie_and_redirects(
    guarded: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    status, headers, _ = await _request(guarded, "GET", f"/?token={TOKEN}")
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


async def test_wrong_token_in_the_page_url_is_401_and_sets_no_cookie(
    guarded: RunningServer,
) -> None:
    status, headers, body = await _request(guarded, "GET", "/?token=wrong")
    _assert_401(status, headers, body)
    assert "Set-Cookie" not in headers


async def test_without_a_configured_token_everything_is_open(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["open"]))
    async with await open_sse(server.url + "/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.text == "open"
    status, headers, _ = await _request(server, "GET", "/?token=anything")
    assert status == 200
    assert "Set-Cookie" not in headers
    status, _, _ = await _request(server, "GET", "/metrics")
    assert status == 200


async def test_the_token_and_the_key_never_reach_a_log_line(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    # What `python -m sseserver --log-level debug` logs: our loggers at DEBUG, the SDK's
    # HTTP stack at INFO (its DEBUG lines carry request bodies: configure_logging).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="sseserver")
    fake_anthropic.enqueue(Reply(chunks=["fine"]))
    await _request(guarded, "GET", f"/?token={TOKEN}")
    await _request(guarded, "GET", "/?token=wrong-guess-of-the-token")
    await _request(guarded, "GET", "/api/sse?message=hi",
                   headers={"Authorization": "Bearer wrong-guess-of-the-token"})
    async with await open_sse(guarded.url + "/api/sse?message=a-private-question",
                              headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
        await stream.read_all()
    assert "generation id=" in caplog.text  # the logs were captured
    for secret in (TOKEN, fake_anthropic.api_key, "wrong-guess", "a-private-question"):
        assert secret not in caplog.text
    assert TOKEN not in repr(guarded.settings)


def test_debug_logging_keeps_the_sdk_from_logging_request_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_LOG", raising=False)
    saved = {name: logging.getLogger(name).level for name in ("anthropic", "httpx2", "")}
    try:
        configure_logging("debug")
        assert logging.getLogger("sseserver").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("anthropic._base_client").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("httpx2").isEnabledFor(logging.DEBUG)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# ---- CORS ----


async def test_cors_is_off_by_default(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = await _request(server, "OPTIONS", "/api/streams", headers=preflight)
    assert status == 405  # no preflight answer: the browser refuses the cross-site call
    assert not any(h.startswith("Access-Control-") for h in headers)
    status, headers, _ = await _request(server, "GET", "/healthz", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in headers


async def test_cors_answers_listed_origins_only(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, cors_origins=(ORIGIN,),
                                access_token=TOKEN)
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    # A preflight carries no credentials: it is answered before the token is asked for.
    status, headers, _ = await _request(server, "OPTIONS", "/api/streams",
                                        headers={"Origin": ORIGIN, **preflight})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "DELETE" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in headers
    assert headers["Vary"] == "Origin"

    status, headers, body = await _request(server, "OPTIONS", "/api/streams",
                                           headers={"Origin": "https://evil.example",
                                                    **preflight})
    assert status == 403
    assert json.loads(body)["error"]["type"] == "permission_error"
    assert "Access-Control-Allow-Origin" not in headers

    # The actual calls: the listed origin may read the answers, errors included.
    fake_anthropic.enqueue(Reply(chunks=["cross"]))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with await open_sse(server.url + "/api/sse?message=hi",
                              headers={"Origin": ORIGIN, **auth}) as stream:
        await stream.read_all()
        assert stream.headers["Access-Control-Allow-Origin"] == ORIGIN  # an SSE response
    assert stream.text == "cross"
    status, headers, _ = await _request(server, "GET", "/api/sse?message=hi",
                                        headers={"Origin": ORIGIN})
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    status, headers, _ = await _request(server, "GET", "/api/streams/abc",
                                        headers={"Origin": "https://evil.example", **auth})
    assert status == 404
    assert "Access-Control-Allow-Origin" not in headers
    # Only the API is shared cross-site.
    status, headers, _ = await _request(server, "GET", "/healthz", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in headers


# ---- headers ----


async def test_the_page_has_a_strict_csp_and_no_inline_script(
    start_server: StartServer,
) -> None:
    server = await start_server()
    status, headers, body = await _request(server, "GET", "/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert csp == PAGE_CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    html = body.decode()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts, "the page loads its modules"
    assert all(not inline.strip() for inline in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no inline event handlers


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/", {}),
        ("GET", f"/?token={TOKEN}", {}),
        ("GET", "/static/app.js", {}),
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/metrics", {}),
        ("GET", "/api/sse?message=hi", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/api/sse", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/nope", {}),
        ("PUT", "/healthz", {}),
    ],
)
async def test_every_answer_has_nosniff(
    guarded: RunningServer, fake_anthropic: FakeAnthropic, method: str, path: str,
    headers: dict[str, str],
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["x"]))
    _, got, _ = await _request(guarded, method, path, headers=headers)
    assert got["X-Content-Type-Options"] == "nosniff"


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


def test_exposure_warning_is_printed_at_start() -> None:
    """192.0.2.1 (TEST-NET-1) is never assigned here: the bind fails, after the warning,
    without a packet leaving the machine."""
    result = subprocess.run(
        [sys.executable, "-m", "sseserver", "--host", "192.0.2.1", "--port", "0"],
        cwd=ROOT, env=clean_env(ANTHROPIC_API_KEY="sk-ant-not-a-real-key"),
        capture_output=True, text=True, timeout=20,
    )
    assert "!!! listening on 192.0.2.1 with the anthropic provider" in result.stderr
    assert "--access-token" in result.stderr
    assert "sk-ant-not-a-real-key" not in result.stderr
    assert result.returncode == 1  # cannot listen there
