"""Users over HTTP, with the whole app (docs/protocol.md, "Access"): tokens signed with
HS256 (a secret file) and with RS256 and ES256 keys from a JWKS served on 127.0.0.1 are
accepted; every kind of bad token is refused with 401, a WWW-Authenticate challenge and
an error type that says why; a rotated key is picked up, and the JWKS is fetched again
at most once per refresh bound. The user appears in the logs, the token never."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from http.cookies import SimpleCookie
from typing import Any

import jwt
import pytest

from sseserver.app_keys import GENERATIONS
from sseserver.config import JWKS_MIN_REFRESH, Settings
from sseserver.identity import COOKIE_NAME

from .conftest import RunningServer, StartServer
from .support.http_client import request
from .support.jwt_issuer import (
    AUDIENCE,
    ISSUER,
    SECRET,
    Jwks,
    bearer,
    claims,
    ec_key,
    hs256,
    jwks,
    rsa_key,
    signed,
)
from .support.metrics_text import parse, value
from .support.sse_client import open_sse

__all__ = ["jwks"]

POST = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(payload: dict[str, Any]) -> str:
    """`alg: none`, as an attacker writes it."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def _hs256_with(key: bytes, payload: dict[str, Any], kid: str | None = None) -> str:
    """HS256 over any bytes (PyJWT itself refuses a PEM key as an HMAC secret)."""
    head: dict[str, Any] = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


async def _users(start_server: StartServer, jwks: Jwks, **extra: Any) -> RunningServer:
    return await start_server(
        jwt_secret_file=SECRET, jwt_jwks_url=jwks.url, jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER, **extra,
    )


async def _wait_keys(server: RunningServer, jwks: Jwks) -> None:
    """The JWKS fetched at start has arrived (a known key's token is accepted)."""
    token = signed(jwks.keys[0], claims("warmup"))
    deadline = time.monotonic() + 5
    while (await request("GET", server.url + "/api/usage", headers=bearer(token))).status != 200:
        assert time.monotonic() < deadline, "the JWKS fetched at start never arrived"
        await asyncio.sleep(0.02)


def _refused(answer: tuple[int, dict[str, str], bytes], error_type: str) -> None:
    status, headers, body = answer
    assert status == 401, body
    assert json.loads(body)["error"]["type"] == error_type
    challenge = headers["WWW-Authenticate"]
    if error_type == "token_missing":
        assert challenge == 'Bearer realm="sseserver"'
    else:
        assert challenge.startswith('Bearer realm="sseserver", error="invalid_token", '
                                    'error_description="')


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
async def test_valid_tokens_start_and_read_a_stream_as_their_user(
    start_server: StartServer, jwks: Jwks, caplog: pytest.LogCaptureFixture, alg: str,
) -> None:
    server = await _users(start_server, jwks)
    await _wait_keys(server, jwks)
    key = {"RS256": jwks.keys[0], "ES256": jwks.keys[1]}.get(alg)
    token = hs256(claims("alice")) if key is None else signed(key, claims("alice"))
    with caplog.at_level(logging.INFO):
        status, _, body = await request("POST", server.url + "/api/streams",
                                        headers=bearer(token), json_body=POST)
        assert status == 201, body
        url = json.loads(body)["url"]
        async with await open_sse(server.url + url, headers=bearer(token)) as stream:
            await stream.read_all()
        assert stream.types()[-1] == "done"
        await asyncio.sleep(0.05)  # the generation's log line follows its last frame
    assert any("user=alice" in r.getMessage() and '"POST /api/streams" 201' in r.getMessage()
               for r in caplog.records)
    assert any(r.getMessage().startswith("generation id=") and " user=alice " in r.getMessage()
               for r in caplog.records)
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


def _refusals() -> list[Any]:
    other_secret = b"another-secret-of-32-bytes-or-more!!"
    return [
        pytest.param(lambda k: None, "token_missing", id="missing"),
        pytest.param(lambda k: hs256(claims(lifetime=-45)), "token_expired", id="expired"),
        pytest.param(lambda k: signed(k, claims(lifetime=-120)), "token_expired",
                     id="expired-rs256"),
        # The time is taken when the test runs, not when it is collected (minutes earlier
        # in a whole run).
        pytest.param(lambda k: hs256(claims(nbf=int(time.time()) + 120)), "token_not_yet_valid",
                     id="not-yet-valid"),
        pytest.param(lambda k: hs256(claims(aud="someone-else")), "wrong_audience",
                     id="wrong-audience"),
        pytest.param(lambda k: hs256({k: v for k, v in claims().items() if k != "aud"}),
                     "wrong_audience", id="no-audience"),
        pytest.param(lambda k: signed(k, claims(iss="https://evil.test")), "wrong_issuer",
                     id="wrong-issuer"),
        pytest.param(lambda k: _unsigned(claims()), "invalid_token", id="alg-none"),
        pytest.param(lambda k: _hs256_with(k.public_pem(), claims(), kid=k.kid),
                     "bad_signature", id="hs256-with-the-rsa-public-key"),
        pytest.param(lambda k: hs256(claims(), other_secret), "bad_signature",
                     id="another-secret"),
        pytest.param(lambda k: signed(k, claims())[:-4] + "AAAA", "bad_signature",
                     id="tampered-rs256"),
        pytest.param(lambda k: hs256({k: v for k, v in claims().items() if k != "exp"}),
                     "invalid_token", id="no-exp"),
        pytest.param(lambda k: hs256(claims(sub="")), "invalid_token", id="empty-sub"),
        pytest.param(lambda k: hs256(claims() | {"sse:budget": "lots"}), "invalid_token",
                     id="bad-budget-claim"),
        pytest.param(lambda k: "not.a.jwt", "invalid_token", id="garbage"),
    ]


@pytest.mark.parametrize(("make", "error_type"), _refusals())
async def test_bad_tokens_are_refused_with_401_and_why(
    start_server: StartServer, jwks: Jwks, make: Any, error_type: str,
) -> None:
    server = await _users(start_server, jwks)
    await _wait_keys(server, jwks)
    token = make(jwks.keys[0])
    headers = bearer(token) if token is not None else {}
    before = value(await _metrics(server), "sseserver_refused_total", reason="unauthorized")
    for method, path, body in (("POST", "/api/streams", POST),
                               ("GET", "/api/sse?message=hi", None),
                               ("GET", "/api/usage", None)):
        _refused(await request(method, server.url + path, headers=headers, json_body=body),
                 error_type)
    after = value(await _metrics(server), "sseserver_refused_total", reason="unauthorized")
    assert after - before == 3
    assert server.app[GENERATIONS].active == 0


async def _metrics(server: RunningServer) -> Any:
    operator = hs256(claims("operator", scope="openid sse:read_any"))
    status, _, body = await request("GET", server.url + "/metrics", headers=bearer(operator))
    assert status == 200
    return parse(body.decode())


async def test_leeway_forgives_30_seconds_of_clock_difference(
    start_server: StartServer, jwks: Jwks,
) -> None:
    server = await _users(start_server, jwks)
    late = hs256(claims(lifetime=-10))
    early = hs256(claims(nbf=int(time.time()) + 10))
    for token in (late, early):
        status, _, body = await request("GET", server.url + "/api/usage", headers=bearer(token))
        assert status == 200, body


async def test_hs256_is_refused_where_only_a_jwks_is_trusted(
    start_server: StartServer, jwks: Jwks,
) -> None:
    """Algorithm confusion: without a secret, an HS256 token (here keyed with the RSA
    public key, which anyone can read) is refused before any signature check."""
    server = await start_server(jwt_jwks_url=jwks.url, jwt_audience=AUDIENCE,
                                jwt_issuer=ISSUER)
    key = jwks.keys[0]
    answer = await request("GET", server.url + "/api/usage",
                           headers=bearer(_hs256_with(key.public_pem(), claims(), key.kid)))
    _refused(answer, "invalid_token")
    assert b"HS256" in answer.body


async def test_unknown_kid_while_the_jwks_is_down_is_refused(
    start_server: StartServer, jwks: Jwks,
) -> None:
    server = await _users(start_server, jwks, jwks_min_refresh=0.2)
    await _wait_keys(server, jwks)
    jwks.down = True
    await asyncio.sleep(0.3)
    stranger = signed(rsa_key("rsa-unknown"), claims())
    _refused(await request("GET", server.url + "/api/usage", headers=bearer(stranger)),
             "invalid_token")
    # The keys it holds still work while the JWKS is down.
    known = signed(jwks.keys[1], claims())
    assert (await request("GET", server.url + "/api/usage", headers=bearer(known))).status == 200


async def test_a_rotated_key_is_picked_up_with_bounded_refreshes(
    start_server: StartServer, jwks: Jwks,
) -> None:
    """The issuer rotates its keys: tokens of the new key are refused only until the
    refresh bound has passed since the last fetch, then the JWKS is fetched once, however
    many requests wait, and the old key's tokens stop working."""
    assert Settings().jwks_min_refresh == JWKS_MIN_REFRESH == 30
    server = await _users(start_server, jwks, jwks_min_refresh=1.0)
    await _wait_keys(server, jwks)
    old = signed(jwks.keys[0], claims("old"))
    assert (await request("GET", server.url + "/api/usage", headers=bearer(old))).status == 200
    fetched = jwks.fetches
    new_key = ec_key("ec-2")
    jwks.keys = [new_key]
    new = signed(new_key, claims("new"))
    for _ in range(5):  # within the bound: refused, and the JWKS is not asked again
        _refused(await request("GET", server.url + "/api/usage", headers=bearer(new)),
                 "invalid_token")
    assert jwks.fetches == fetched
    await asyncio.sleep(1.1)
    answers = await asyncio.gather(*(
        request("GET", server.url + "/api/usage", headers=bearer(new)) for _ in range(20)
    ))
    assert [a.status for a in answers] == [200] * 20
    assert jwks.fetches == fetched + 1
    _refused(await request("GET", server.url + "/api/usage", headers=bearer(old)),
             "invalid_token")


async def test_metrics_needs_the_read_any_scope(start_server: StartServer, jwks: Jwks) -> None:
    server = await _users(start_server, jwks)
    status, _, body = await request("GET", server.url + "/metrics",
                                    headers=bearer(hs256(claims("alice"))))
    assert status == 403
    assert json.loads(body)["error"]["type"] == "permission_error"
    _refused(await request("GET", server.url + "/metrics"), "token_missing")
    scp = hs256(claims("console", scp=["sse:read_any"]))
    assert (await request("GET", server.url + "/metrics", headers=bearer(scp))).status == 200


async def test_page_login_sets_a_cookie_that_event_source_sends(
    start_server: StartServer, jwks: Jwks,
) -> None:
    """`/?token=JWT` sets the cookie until the token's exp and redirects to `/`; the
    cookie alone then starts and reads a stream, as EventSource does."""
    server = await _users(start_server, jwks)
    token = hs256(claims("alice", lifetime=300))
    status, headers, _ = await request("GET", f"{server.url}/?token={token}")
    assert status == 303
    assert headers["Location"] == "/"
    assert headers["Referrer-Policy"] == "no-referrer"
    cookie = SimpleCookie(headers["Set-Cookie"])[COOKIE_NAME]
    assert cookie.value == token
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert 290 <= int(cookie["max-age"]) <= 300
    jar = {"Cookie": f"{COOKIE_NAME}={token}"}
    async with await open_sse(server.url + "/api/sse?message=hi", headers=jar) as stream:
        await stream.read_all()
    assert stream.types()[-1] == "done"
    _refused(await request("GET", f"{server.url}/?token={hs256(claims(lifetime=-100))}"),
             "token_expired")
    # The page itself needs no token.
    assert (await request("GET", server.url + "/")).status == 200
    assert (await request("GET", server.url + "/healthz")).status == 200


async def test_an_app_cookie_works_and_bearer_wins_over_it(
    start_server: StartServer, jwks: Jwks,
) -> None:
    server = await _users(start_server, jwks)
    cookie = {"Cookie": f"{COOKIE_NAME}={hs256(claims('from-cookie'))}"}
    status, _, body = await request("GET", server.url + "/api/usage", headers=cookie)
    assert status == 200
    assert json.loads(body)["user"] == "from-cookie"
    both = cookie | bearer(hs256(claims("from-header")))
    status, _, body = await request("GET", server.url + "/api/usage", headers=both)
    assert json.loads(body)["user"] == "from-header"
    assert jwt.decode(hs256(claims()), SECRET, algorithms=["HS256"], audience=AUDIENCE)
