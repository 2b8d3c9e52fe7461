"""Hostile and careless clients, through the real server: races on the limits, oversized
and unfinished request heads, idle and slow connections, requests that used to end in a
500, and resume points beyond a stream (docs/operations.md, "Limits and timeouts")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .conftest import StartServer

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
