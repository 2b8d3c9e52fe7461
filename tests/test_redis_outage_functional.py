"""Redis unreachable at start and mid-run, then back (docs/operations.md, "Deployment"):
new streams get a clear 503, running subscribers an `error` event, /healthz says degraded;
when Redis comes back, service resumes without a restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.redis_server import RedisServer, require_redis_server
from .support.sse_client import open_sse


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (not started), to stop and start at will."""
    require_redis_server()
    server = RedisServer()
    yield server
    server.close()


async def _health(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/healthz"
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def _post(server: RunningServer) -> tuple[int, dict[str, object], str | None]:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": [{"role": "user", "content": "hi"}]}
    ) as response:
        body: dict[str, object] = await response.json()
        return response.status, body, response.headers.get("Retry-After")


async def _until_accepted(server: RunningServer, timeout: float = 10) -> str:
    """POST until a stream is accepted; its URL."""
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = await _post(server)
        if status == 201:
            return str(body["url"])
        assert status == 503
        assert time.monotonic() < deadline, "service did not come back"
        await asyncio.sleep(0.02)


async def _assert_refused(server: RunningServer) -> None:
    status, body, retry_after = await _post(server)
    assert status == 503
    assert body == {"error": {
        "type": "store_unavailable",
        "message": "The stream store is unreachable; try again shortly.",
    }}
    assert retry_after == "2"  # protocol.md, "Errors": store_unavailable
    health = await _health(server)
    assert {key: health[key] for key in health if key != "capabilities"} == {
        "status": "degraded", "reason": "the stream store does not answer",
        "provider": "anthropic", "active_streams": 0, "backend": "redis",
    }
    assert health["capabilities"]["thinking"] == {"max_tokens": 1023}  # what requests may ask


async def test_redis_down_at_start_mid_run_and_back(
    start_server: StartServer, fake_anthropic: FakeAnthropic, private_redis: RedisServer
) -> None:
    # Down at start: the server starts all the same, degraded.
    server = await start_server(fake=fake_anthropic, redis_url=private_redis.url)
    await _assert_refused(server)
    assert fake_anthropic.requests == []

    # Redis comes up: streams work, with no restart.
    await asyncio.to_thread(private_redis.start)
    up_at = time.monotonic()
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 1000, delay=0.01))
    url = await _until_accepted(server)
    print(f"Redis started: first stream accepted {(time.monotonic() - up_at) * 1000:.0f} ms later")
    assert (await _health(server))["status"] == "ok"

    # Down mid-run: the running subscriber gets an error event, without an id (so its
    # Last-Event-ID stays on the last frame it has), and the generation stops.
    async with await open_sse(server.url + url) as stream:
        await stream.take(5)
        last_frame_id = stream.last_id
        stopped_at = time.monotonic()
        await asyncio.to_thread(private_redis.stop)
        events = await stream.read_all(timeout=5)
        noticed = time.monotonic() - stopped_at
    error = events[-1]
    assert error.type == "error"
    assert json.loads(error.data)["type"] == "store_unavailable"
    assert "id:" not in bytes(stream.raw).decode().rsplit("\n\n", 2)[-2]
    assert error.last_event_id == last_frame_id or error.last_event_id == events[-2].last_event_id
    closed_at = await fake_anthropic.wait_closed(0, timeout=5)
    print(f"Redis stopped: subscriber got its error event {noticed * 1000:.0f} ms later, "
          f"the upstream was closed {(closed_at - stopped_at) * 1000:.0f} ms later")
    await _assert_refused(server)

    # Back again (empty: no persistence): service resumes without a restart.
    await asyncio.to_thread(private_redis.start)
    up_at = time.monotonic()
    fake_anthropic.enqueue(Reply(chunks=["a", "b", "c"]))
    url = await _until_accepted(server)
    recovered = time.monotonic() - up_at
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    assert stream.text == "abc"
    assert stream.types()[-2:] == ["usage", "done"]
    print(f"Redis restarted: first stream accepted {recovered * 1000:.0f} ms later")
    assert (await _health(server))["status"] == "ok"
    # The process's own bookkeeping came back too: DELETE reaches the new generation.
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    url = await _until_accepted(server)
    async with await open_sse(server.url + url) as stream:
        await stream.take(3)
        async with aiohttp.ClientSession() as session, session.delete(
            server.url + url
        ) as response:
            assert response.status == 204
        await stream.read_all()
    assert json.loads(stream.events[-2].data)["stop_reason"] == "cancelled"
