"""/metrics (docs/operations.md, "Metrics"): after a scripted sequence of streams against the fake,
every counter has moved by exactly what happened; no label holds a stream, a client, a
message or a key; each app has its own registry."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from sseserver.metrics import Metrics

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import (
    FakeAnthropic,
    HttpError,
    MidStreamError,
    Reply,
    Silent,
    count_output_tokens,
)
from .support.metrics_text import Samples, parse, value
from .support.sse_client import SSEStream, open_sse

QUESTION = "secret-question-42"


async def scrape(server: RunningServer, headers: dict[str, str] | None = None) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/metrics", headers=headers
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return parse(text)


async def _post(server: RunningServer) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": [{"role": "user", "content": QUESTION}]}
    ) as response:
        assert response.status == 201
        return str((await response.json())["url"])


async def _settle(server: RunningServer) -> Samples:
    """Scrape until nothing runs or is attached any more (ends are asynchronous)."""
    for _ in range(200):
        samples = await scrape(server)
        if (value(samples, "sseserver_generations_active") == 0
                and value(samples, "sseserver_subscribers_active") == 0):
            return samples
        await asyncio.sleep(0.01)
    raise AssertionError("generations or subscribers still active")


async def test_counters_follow_a_scripted_sequence(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5)
    start = await scrape(server)
    assert value(start, "sseserver_generations_started_total") == 0
    assert value(start, "sseserver_disconnects_total", reason="slow") == 0  # exists at 0
    full, resumed_words = ["a", "b", "c", "d", "e"], [f"w{i} " for i in range(20)]
    fake_anthropic.enqueue(
        Reply(chunks=full),
        Reply(chunks=resumed_words, delay=0.01),
        Silent(chunks=["s"]),
        HttpError(529, "overloaded_error"),
        MidStreamError(chunks=["m"], error_type="api_error"),
    )
    streams: list[SSEStream] = []
    sse = f"{server.url}/api/sse?message={QUESTION}"

    # 1. read to the end
    async with await open_sse(sse) as one:
        await one.read_all()
    streams.append(one)
    # 2. drop after 4 events, resume with Last-Event-ID
    dropped = await open_sse(sse)
    await dropped.take(4)
    await dropped.close()
    async with await open_sse(sse, headers={"Last-Event-ID": dropped.last_id}) as resumed:
        await resumed.read_all()
    streams.append(resumed)
    assert dropped.text + resumed.text == "".join(resumed_words)
    # 3. POST, watch it, live numbers, DELETE
    url = await _post(server)
    async with await open_sse(server.url + url) as watched:
        await watched.take(2)
        live = await scrape(server)
        assert value(live, "sseserver_generations_active") == 1
        assert value(live, "sseserver_subscribers_active") == 1
        async with aiohttp.ClientSession() as session, session.delete(server.url + url) as r:
            assert r.status == 204
        await watched.read_all()
    streams.append(watched)
    assert json.loads(watched.events[-2].data)["stop_reason"] == "cancelled"
    # 4. and 5. upstream errors, before and after the first token
    for _ in range(2):
        async with await open_sse(sse) as failed:
            await failed.read_all()
        assert failed.types()[-1] == "error"
        streams.append(failed)

    end = await _settle(server)
    assert value(end, "sseserver_generations_started_total") == 5
    assert value(end, "sseserver_generations_finished_total", ended="done") == 2
    assert value(end, "sseserver_generations_finished_total", ended="cancelled") == 1
    assert value(end, "sseserver_generations_finished_total", ended="error") == 2
    assert value(end, "sseserver_generations_finished_total", ended="client_gone") == 0
    assert value(end, "sseserver_upstream_errors_total", type="overloaded_error") == 1
    assert value(end, "sseserver_upstream_errors_total", type="api_error") == 1
    assert value(end, "sseserver_resumes_total") == 1
    assert value(end, "sseserver_disconnects_total", reason="client_gone") == 1
    assert value(end, "sseserver_disconnects_total", reason="slow") == 0
    # Generations with a first token: 1, 2, 3 and 5; every generation has a duration.
    assert value(end, "sseserver_time_to_first_token_seconds_count") == 4
    assert value(end, "sseserver_generation_duration_seconds_count") == 5
    assert value(end, "sseserver_output_tokens_total") == (
        count_output_tokens(full) + count_output_tokens(resumed_words) + 1 + 0 + 1
    )
    # Events and bytes: what the clients read, plus what reached the dropped one's socket
    # after it stopped reading (at most the rest of its stream).
    read_events = sum(len(s.events) for s in [*streams, dropped])
    read_bytes = sum(len(s.raw) for s in [*streams, dropped])
    sent_events = value(end, "sseserver_events_sent_total")
    assert read_events <= sent_events <= read_events + len(resumed.events)
    assert read_bytes <= value(end, "sseserver_bytes_sent_total")
    assert value(end, "process_resident_memory_bytes") > 0
    assert value(end, "sseserver_asyncio_tasks") >= 1


async def test_metrics_hold_no_secret_message_or_per_stream_label(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["hello"]), HttpError(401, "authentication_error"))
    for _ in range(2):
        async with await open_sse(f"{server.url}/api/sse?message={QUESTION}") as stream:
            await stream.read_all()
    stream_id = json.loads(stream.events[0].data)["stream"]
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/metrics"
    ) as response:
        text = await response.text()
    for secret in (fake_anthropic.api_key, QUESTION, stream_id, "127.0.0.1", "hello"):
        assert secret not in text
    labels = {name for (_, pairs) in parse(text) for name, _ in pairs}
    assert labels <= {"ended", "reason", "type", "kind", "le"}


async def test_refusals_are_counted(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    token = "metrics-token-0123456789abcdef"
    server = await start_server(fake=fake_anthropic, access_token=token,
                                max_streams_per_client=1)
    auth = {"Authorization": f"Bearer {token}"}
    fake_anthropic.enqueue(Silent())
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/api/sse?message=hi") as response:
            assert response.status == 401
        async with session.get(server.url + "/metrics") as response:
            assert response.status == 401
        body = {"messages": [{"role": "user", "content": "hi"}]}
        async with session.post(server.url + "/api/streams", json=body, headers=auth) as r:
            assert r.status == 201
            url = (await r.json())["url"]
        async with session.post(server.url + "/api/streams", json=body, headers=auth) as r:
            assert r.status == 429
        async with session.delete(server.url + url, headers=auth) as r:
            assert r.status == 204
    samples = await scrape(server, headers=auth)
    assert value(samples, "sseserver_refused_total", reason="unauthorized") == 2
    assert value(samples, "sseserver_refused_total", reason="client_limit") == 1
    assert value(samples, "sseserver_refused_total", reason="capacity") == 0


async def test_each_app_has_its_own_registry(start_server: StartServer) -> None:
    busy = await start_server()
    idle = await start_server()
    async with await open_sse(busy.url + "/api/sse?message=hi") as stream:
        await stream.read_all()
    assert value(await scrape(busy), "sseserver_generations_started_total") == 1
    assert value(await scrape(idle), "sseserver_generations_started_total") == 0


def test_unknown_upstream_error_types_share_one_label() -> None:
    """An upstream could send any string as its error type; labels stay a fixed set."""
    metrics = Metrics()
    for odd in ("weird_error_1", "weird_error_2", "x" * 500):
        metrics.generation_finished("error", ttft=None, duration=0.1, output_tokens=0,
                                    error_type=odd)
    metrics.generation_finished("error", ttft=0.2, duration=1.0, output_tokens=3,
                                error_type="rate_limit_error")
    samples = parse(metrics.render()[0].decode())
    assert value(samples, "sseserver_upstream_errors_total", type="other") == 3
    assert value(samples, "sseserver_upstream_errors_total", type="rate_limit_error") == 1
    assert not any("weird" in str(key) for key in samples)
