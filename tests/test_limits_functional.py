"""Limits (docs/protocol.md, "Limits"): they count generations, answer with their status and
Retry-After, start nothing when they refuse, and never count a resumed subscriber."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply, Silent
from .support.sse_client import open_sse

BODY = {"messages": [{"role": "user", "content": "hi"}]}


async def _post(
    server: RunningServer, *, local: str = "127.0.0.1"
) -> tuple[int, dict[str, str], dict[str, object]]:
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
        server.url + "/api/streams", json=BODY
    ) as response:
        return response.status, dict(response.headers), await response.json()


async def _get(server: RunningServer, path: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(server.url + path) as response:
        return response.status, dict(response.headers), await response.read()


async def _delete(server: RunningServer, url: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(server.url + url) as response:
        assert response.status == 204


async def _active(server: RunningServer) -> int:
    _, _, body = await _get(server, "/healthz")
    return int(json.loads(body)["active_streams"])


async def _subscribe_once(server: RunningServer, urls: list[str]) -> None:
    """Attach a first subscriber to each stream, in order: a generation started by POST
    calls the upstream only then."""
    for url in urls:
        async with await open_sse(server.url + url) as stream:
            await stream.take(1)  # meta


def _assert_refusal(status: int, headers: dict[str, str], body: dict[str, object],
                    want: int, error_type: str) -> None:
    assert status == want, body
    assert headers["Retry-After"].isdigit()
    error = body["error"]
    assert isinstance(error, dict)
    assert error["type"] == error_type


async def test_per_client_limit_is_429_with_retry_after_and_counts_generations(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, max_streams_per_client=2)
    fake_anthropic.enqueue(Silent(chunks=["a"]), Silent(chunks=["b"]), Reply(chunks=["c"]))
    urls = []
    for _ in range(2):
        status, _, body = await _post(server)
        assert status == 201
        urls.append(str(body["url"]))
    _assert_refusal(*await _post(server), 429, "rate_limit_error")
    status, headers, raw = await _get(server, "/api/sse?message=hi")
    _assert_refusal(status, headers, json.loads(raw), 429, "rate_limit_error")
    await _subscribe_once(server, urls)
    await fake_anthropic.wait_requests(2)
    assert len(fake_anthropic.requests) == 2  # the refusals started nothing
    assert await _active(server) == 2

    # Subscribers and resumes of a running generation do not count: three at once is fine.
    streams = [await open_sse(server.url + urls[0]) for _ in range(3)]
    for stream in streams:
        assert stream.status == 200
        await stream.take(2)  # meta and "a"
    resumed = await open_sse(server.url + urls[0],
                             headers={"Last-Event-ID": streams[0].events[0].last_event_id})
    assert resumed.status == 200
    for stream in [*streams, resumed]:
        await stream.close()

    # Another address has its own count.
    status, _, body = await _post(server, local="127.0.0.2")
    assert status == 201
    # When one of ours ends, the slot is free again.
    await _delete(server, urls[1])
    await fake_anthropic.wait_closed(1)
    for _ in range(50):
        if await _active(server) == 2:
            break
        await asyncio.sleep(0.01)
    status, _, _ = await _post(server)
    assert status == 201
    for url in (urls[0], str(body["url"])):
        await _delete(server, url)


async def test_no_per_client_limit_by_default(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """A load test from one address must not be throttled by default: the per-client limit
    is off unless set (docs/protocol.md, "Limits")."""
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(*[Silent() for _ in range(20)])
    results = await asyncio.gather(*[_post(server) for _ in range(20)])
    assert [status for status, _, _ in results] == [201] * 20
    for _, _, body in results:
        await _delete(server, str(body["url"]))


async def test_max_streams_is_503_with_retry_after_on_both_routes(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, max_streams=2)
    fake_anthropic.enqueue(Silent(), Silent())
    running = [await _post(server) for _ in range(2)]
    assert [status for status, _, _ in running] == [201, 201]
    _assert_refusal(*await _post(server), 503, "overloaded_error")
    status, headers, raw = await _get(server, "/api/sse?message=hi")
    _assert_refusal(status, headers, json.loads(raw), 503, "overloaded_error")
    await _subscribe_once(server, [str(body["url"]) for _, _, body in running])
    await fake_anthropic.wait_requests(2)
    assert len(fake_anthropic.requests) == 2
    # A subscriber of a running generation is not a generation: served at capacity.
    async with await open_sse(server.url + str(running[0][2]["url"])) as stream:
        assert stream.status == 200
        await stream.take(1)
    for _, _, body in running:
        await _delete(server, str(body["url"]))


async def test_shutting_down_refuses_new_generations_with_503(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """During the shutdown grace, a request already on an open connection may still
    arrive: it gets 503 and a Retry-After, while the running generation goes on."""
    from sseserver.app_keys import GENERATIONS

    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["x "] * 30, delay=0.02))
    async with await open_sse(server.url + "/api/sse?message=hi") as stream:
        await stream.take(2)
        drain = asyncio.create_task(server.app[GENERATIONS].drain(grace=5))
        await asyncio.sleep(0.05)
        _assert_refusal(*await _post(server), 503, "overloaded_error")
        await stream.read_all()
        await drain
    assert stream.types()[-1] == "done"
    assert len(fake_anthropic.requests) == 1


@pytest.mark.parametrize(
    ("settings", "query", "status"),
    [
        pytest.param({"max_message_chars": 10}, "message=" + "x" * 11, 413, id="message-chars"),
        pytest.param({"max_tokens": 50}, "message=hi&max_tokens=51", 400, id="max-tokens"),
        pytest.param({"models": ("claude-haiku-5-5",)}, "message=hi&model=claude-opus-5", 400,
                     id="models-allow-list"),
    ],
)
async def test_request_limits_follow_the_settings(
    start_server: StartServer, fake_anthropic: FakeAnthropic, settings: dict[str, object],
    query: str, status: int,
) -> None:
    """The request limits move with their options (test_bad_input_functional.py covers each refusal
    in depth at one setting)."""
    server = await start_server(fake=fake_anthropic, **settings)
    got, _, _ = await _get(server, "/api/sse?" + query)
    assert got == status
    assert fake_anthropic.requests == []
