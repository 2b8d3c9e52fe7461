"""CORS over HTTP, with the whole app: off unless `--cors-origins` names origins, then only
those may call /api/ and read its answers, errors and SSE responses included. The rules one
by one, without HTTP: tests/test_cors.py."""

from __future__ import annotations

import json
from typing import Final

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.http_client import request
from .support.sse_client import open_sse

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"
ORIGIN: Final = "https://chat.example.com"


async def test_cors_is_off_by_default(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = await request("OPTIONS", server.url + "/api/streams", headers=preflight)
    assert status == 405  # no preflight answer: the browser refuses the cross-site call
    assert not any(h.startswith("Access-Control-") for h in headers)
    status, headers, _ = await request("GET", server.url + "/healthz", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in headers


async def test_cors_answers_listed_origins_only(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, cors_origins=(ORIGIN,),
                                access_token=TOKEN)
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    # A preflight carries no credentials: it is answered before the token is asked for.
    status, headers, _ = await request("OPTIONS", server.url + "/api/streams",
                                       headers={"Origin": ORIGIN, **preflight})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "DELETE" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in headers
    assert headers["Vary"] == "Origin"

    status, headers, body = await request("OPTIONS", server.url + "/api/streams",
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
    status, headers, _ = await request("GET", server.url + "/api/sse?message=hi",
                                       headers={"Origin": ORIGIN})
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    status, headers, _ = await request("GET", server.url + "/api/streams/abc",
                                       headers={"Origin": "https://evil.example", **auth})
    assert status == 404
    assert "Access-Control-Allow-Origin" not in headers
    # Only the API is shared cross-site.
    status, headers, _ = await request("GET", server.url + "/healthz", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in headers
