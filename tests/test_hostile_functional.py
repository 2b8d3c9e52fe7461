"""Hostile and careless clients, through the real server: races on the limits, oversized
and unfinished request heads, idle and slow connections, requests that used to end in a
500, and resume points beyond a stream (docs/operations.md, "Limits and timeouts")."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from typing import Any

import aiohttp
import pytest

from sseserver.keys import GENERATIONS

from .conftest import StartServer
from .raw_http import exchange, request

BODY = {"messages": [{"role": "user", "content": "hi"}]}


async def test_simultaneous_posts_from_one_client_admit_exactly_the_limit(
    start_server: StartServer, backend: dict[str, Any]
) -> None:
    """200 POSTs sent at once from one address: the per-client check and count are one
    step, so exactly 3 pass on either store, and the rest get 429."""
    server = await start_server(
        max_streams_per_client=3, max_streams=20, demo_delay_ms=200, **backend
    )
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> tuple[int, dict[str, Any]]:
            async with session.post(server.url + "/api/streams", json=BODY) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(post() for _ in range(200)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201] * 3 + [429] * 197
        async with session.get(server.url + "/healthz") as response:
            assert (await response.json())["active_streams"] == 3
        for status, body in answers:
            if status == 201:
                async with session.delete(server.url + body["url"]) as response:
                    assert response.status == 204
            else:
                assert body["error"]["type"] == "rate_limit_error"


async def test_the_global_limit_holds_under_a_race_too(
    start_server: StartServer, backend: dict[str, Any]
) -> None:
    server = await start_server(max_streams=20, demo_delay_ms=200, **backend)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> tuple[int, dict[str, Any]]:
            async with session.post(server.url + "/api/streams", json=BODY) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(post() for _ in range(200)))
        assert sorted(status for status, _ in answers) == [201] * 20 + [503] * 180
        async with session.get(server.url + "/healthz") as response:
            assert json.loads(await response.read())["active_streams"] == 20
        for status, body in answers:
            if status == 201:
                async with session.delete(server.url + body["url"]) as response:
                    assert response.status == 204


async def test_a_last_event_id_beyond_the_stream_is_refused(
    start_server: StartServer, backend: dict[str, Any]
) -> None:
    """`Last-Event-ID: <id>:999999999` on a running stream used to get 200 and pings
    until the stream ended without `usage` or `done`; now 400, on either store, while
    a resume from an event the stream has still works."""
    server = await start_server(demo_delay_ms=50, demo_tokens=40, **backend)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/streams", json=BODY) as response:
            url = (await response.json())["url"]
        stream_id = url.rsplit("/", 1)[1]
        for path, headers in [
            (url, {"Last-Event-ID": f"{stream_id}:999999999"}),
            (f"/api/sse?lastEventId={stream_id}:999999999", {}),
            (url, {"Last-Event-ID": f"{stream_id}:60"}),
        ]:
            async with session.get(server.url + path, headers=headers) as response:
                assert response.status == 400
                assert response.headers["Content-Type"].startswith("application/json")
                error = (await response.json())["error"]
                assert error["type"] == "invalid_request_error"
                assert error["message"].startswith("Last-Event-ID is beyond this stream")
        # A resume point the stream has: the rest of the stream, to `done`.
        async with session.get(server.url + url,
                               headers={"Last-Event-ID": f"{stream_id}:0"}) as response:
            assert response.status == 200
            body = await response.text()
        assert body.endswith('event: done\ndata: "[DONE]"\n\n')
        ids = [line.split(":")[-1] for line in body.splitlines() if line.startswith("id:")]
        last = int(ids[-1])
        # Ended: from the last event on there is nothing to send (204); beyond it, 400.
        async with session.get(server.url + url,
                               headers={"Last-Event-ID": f"{stream_id}:{last}"}) as response:
            assert response.status == 204
        async with session.get(server.url + url,
                               headers={"Last-Event-ID": f"{stream_id}:{last + 2}"}) as response:
            assert response.status == 400


TOKEN = "hostile-token-0123456789"
AUTH = ("Authorization", f"Bearer {TOKEN}".encode())
JSON = ("Content-Type", b"application/json")


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("raw", "status", "error_type"),
    [
        pytest.param(request("GET", "/static/" + "a" * 300), 404, "not_found_error",
                     id="static-name-too-long"),
        pytest.param(request("GET", "/static/a%00b"), 404, "not_found_error", id="static-nul"),
        pytest.param(request("POST", "/api/streams", [AUTH, JSON], b"[" * 200_000), 400,
                     "invalid_request_error", id="json-nested-200000-deep"),
        pytest.param(request("POST", "/api/streams",
                             [AUTH, JSON, ("Content-Encoding", b"gzip")], b"0123456789"),
                     400, "invalid_request_error", id="corrupt-gzip"),
        pytest.param(request("POST", "/api/streams",
                             [AUTH, JSON, ("Content-Encoding", b"deflate")],
                             _deflated(b'{"messages": []}')[:-6] + b"garbage!"),
                     400, "invalid_request_error", id="corrupt-deflate"),
    ],
)
async def test_requests_that_used_to_end_in_a_500_get_a_clean_4xx(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, raw: bytes, status: int,
    error_type: str,
) -> None:
    """Each used to raise inside a handler (OSError, ValueError, RecursionError,
    RequestPayloadError) and end in a 500 with a traceback in the log, twice for the
    compressed bodies. Now a JSON error, one access-log line, and nothing at WARNING or
    above."""
    server = await start_server(access_token=TOKEN, max_body_bytes=300_000)
    caplog.set_level(logging.INFO)
    answer = await exchange(server.url, raw)
    assert answer.status == status, answer
    assert answer.error()["type"] == error_type
    assert answer.headers["x-content-type-options"] == "nosniff"
    await asyncio.sleep(0.1)  # the access-log line comes after the answer is sent
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(r.exc_info is None for r in caplog.records)
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) == 1
    assert f'" {status} ' in access[0].getMessage()
    assert server.app[GENERATIONS].active == 0
