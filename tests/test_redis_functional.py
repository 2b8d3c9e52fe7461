"""Scale-out end to end: separate `python -m sseserver` processes sharing
one real Redis (or, where the test takes `some_redis_url`, a Redis Cluster too), and one
fake Anthropic API that sees every upstream request.

Each test prints what it measured (run with -s to see it)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from sseserver.store.redis.liveness import HEARTBEAT_INTERVAL, PROCESS_LEASE

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.metrics_text import once_idle, value
from .support.processes import Processes, ServerProcess
from .support.redis_server import RedisServer
from .support.sse_client import open_sse

WORDS = [f"word{i} " for i in range(40)]
# A killed process is noticed within its lease plus one heartbeat of a survivor.
DEATH_BOUND = PROCESS_LEASE + HEARTBEAT_INTERVAL


async def _two(
    processes: Processes, fake: FakeAnthropic, redis_url: str, *args: str
) -> tuple[ServerProcess, ServerProcess]:
    a, b = await asyncio.gather(*(
        processes.sseserver(fake, "--redis-url", redis_url, *args) for _ in range(2)
    ))
    return a, b


async def _post(server: ServerProcess) -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": [{"role": "user", "content": "hi"}]}
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


async def _delete(server: ServerProcess, url: str) -> int:
    async with aiohttp.ClientSession() as session, session.delete(server.url + url) as response:
        return response.status


@pytest.mark.parametrize("route", ["/api/sse", "/api/streams"])
async def test_start_on_a_drop_after_5_events_resume_on_b(
    processes: Processes, fake_anthropic: FakeAnthropic, some_redis_url: str, route: str
) -> None:
    a, b = await _two(processes, fake_anthropic, some_redis_url, "--resume-window", "5")
    fake_anthropic.enqueue(Reply(chunks=WORDS, delay=0.01))
    url = "/api/sse?message=hi" if route == "/api/sse" else await _post(a)
    first = await open_sse(a.url + url)
    await first.take(5)
    await first.close()
    async with await open_sse(b.url + url, headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    assert first.text + second.text == "".join(WORDS)
    assert second.types()[-2:] == ["usage", "done"]
    stream_id, index = first.last_id.split(":")
    assert second.events[0].last_event_id == f"{stream_id}:{int(index) + 1}"
    assert len(fake_anthropic.requests) == 1
    # Fully delivered: a reconnect to either process gets 204.
    for server in (a, b):
        async with aiohttp.ClientSession() as session, session.get(
            server.url + url, headers={"Last-Event-ID": second.last_id}
        ) as response:
            assert response.status == 204


async def test_delete_on_b_cancels_the_upstream_of_a_within_250ms(
    processes: Processes, fake_anthropic: FakeAnthropic, some_redis_url: str
) -> None:
    a, b = await _two(processes, fake_anthropic, some_redis_url)
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    url = await _post(a)
    async with await open_sse(a.url + url) as stream:
        await stream.take(3)
        asked_at = time.monotonic()
        assert await _delete(b, url) == 204
        closed_at = await fake_anthropic.wait_closed(0, timeout=2)
        await stream.read_all()
    latency_ms = (closed_at - asked_at) * 1000
    print(f"DELETE on B closed A's upstream in {latency_ms:.1f} ms")
    assert latency_ms < 250
    assert stream.types()[-2:] == ["usage", "done"]
    assert json.loads(stream.events[-2].data)["stop_reason"] == "cancelled"
    assert await _delete(b, url) == 204  # ended: still fine
    assert await _delete(b, "/api/streams/never-held") == 404


async def test_last_subscriber_leaving_b_cancels_a_after_the_window(
    processes: Processes, fake_anthropic: FakeAnthropic, some_redis_url: str
) -> None:
    window = 1.0
    a, b = await _two(processes, fake_anthropic, some_redis_url, "--resume-window", str(window))
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 1000, delay=0.01))
    url = await _post(a)
    async with await open_sse(b.url + url) as stream:
        await stream.take(3)
        left_at = time.monotonic()
    closed_at = await fake_anthropic.wait_closed(0, timeout=window + 3)
    after = closed_at - left_at
    print(f"resume window {window}s: A's upstream closed {after * 1000:.0f} ms after the "
          "last subscriber left B")
    assert window - 0.2 <= after <= window + 0.5


async def test_a_subscriber_process_killed_counts_as_gone(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str
) -> None:
    """Presence is a lease, not a counter: B dies holding a subscriber (no leave() ever
    runs), and A still cancels, once B's lease ran out and the window passed."""
    window = 0.5
    a, b = await _two(processes, fake_anthropic, redis_url, "--resume-window", str(window))
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 2000, delay=0.01))
    url = await _post(a)
    async with await open_sse(b.url + url) as stream:
        await stream.take(3)
        killed_at = time.monotonic()
        b.kill()
        closed_at = await fake_anthropic.wait_closed(0, timeout=DEATH_BOUND + window + 3)
    after = closed_at - killed_at
    print(f"subscriber's process killed: A's upstream closed {after * 1000:.0f} ms later "
          f"(bound {DEATH_BOUND + window:.1f} s)")
    assert after <= DEATH_BOUND + window + 0.5


async def test_owner_killed_mid_generation_its_subscribers_get_an_error(
    processes: Processes, fake_anthropic: FakeAnthropic, some_redis_url: str
) -> None:
    a, b = await _two(processes, fake_anthropic, some_redis_url, "--resume-window", "5")
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 2000, delay=0.01))
    url = await _post(a)
    async with await open_sse(b.url + url) as stream:
        await stream.take(5)
        killed_at = time.monotonic()
        a.kill()
        events = await stream.read_all(timeout=DEATH_BOUND + 3)
        noticed = time.monotonic() - killed_at
    assert events[-1].type == "error"
    assert json.loads(events[-1].data)["type"] == "generation_lost"
    ids = [int(e.last_event_id.split(":")[1]) for e in events]
    assert ids == list(range(len(events)))  # every frame once, the error at the end's index
    print(f"owner killed: its subscriber on B got the error event {noticed * 1000:.0f} ms "
          f"later (bound {DEATH_BOUND:.0f} s)")
    assert noticed <= DEATH_BOUND + 0.5
    await fake_anthropic.wait_closed(0, timeout=1)  # the kernel closed A's upstream
    # Resuming from before the end replays the rest and the same error; after it, 204.
    async with await open_sse(b.url + url, headers={"Last-Event-ID": events[-3].last_event_id}
                              ) as again:
        await again.read_all()
    assert [(e.type, e.data, e.last_event_id) for e in again.events] == [
        (e.type, e.data, e.last_event_id) for e in events[-2:]]
    async with aiohttp.ClientSession() as session, session.get(
        b.url + url, headers={"Last-Event-ID": events[-1].last_event_id}
    ) as response:
        assert response.status == 204


async def test_a_reconnect_after_redis_lost_the_stream_gets_204(
    start_server: StartServer, fake_anthropic: FakeAnthropic, redis_server: RedisServer,
    redis_url: str,
) -> None:
    """Redis may lose a finished stream's keys (a restart without persistence, an
    eviction) long before its window ends: a reconnect naming it, on a process that
    did not generate it (the generating one keeps its own copy), then gets 204, so
    EventSource stops, and no second generation is started (protocol.md, "204 No
    Content": "or its store lost it")."""
    a = await start_server(fake=fake_anthropic, redis_url=redis_url, resume_window=60)
    b = await start_server(fake=fake_anthropic, redis_url=redis_url, resume_window=60)
    fake_anthropic.enqueue(Reply(chunks=WORDS[:4]))
    async with await open_sse(f"{a.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.types()[-1] == "done"
    resume = {"Last-Event-ID": stream.events[1].last_event_id}  # events 2.. are missed
    stream_url = "/api/streams/" + stream.last_id.split(":")[0]
    async with aiohttp.ClientSession() as session, session.get(
        b.url + stream_url, headers=resume
    ) as response:
        assert response.status == 200  # held in Redis: the rest is replayed
        await response.read()
    assert redis_server.command(b"FLUSHALL") == b"+OK\r\n"
    for url in ("/api/sse?message=hi", stream_url):
        async with aiohttp.ClientSession() as session, session.get(
            b.url + url, headers=resume
        ) as response:
            assert response.status == 204, await response.text()
            assert await response.read() == b""
    assert len(fake_anthropic.requests) == 1


async def test_a_running_stream_redis_lost_ends_with_generation_lost(
    start_server: StartServer, fake_anthropic: FakeAnthropic, redis_server: RedisServer,
    redis_url: str,
) -> None:
    """Redis may lose a running stream's keys (a failover to a replica that had not
    received them, a restart without persistence): its readers, on the owner and on
    another process, each read the stream as it goes on and must then get its end, a
    `generation_lost` error at the next id, never a response that stops without one; a
    resume from that id gets 204."""
    a = await start_server(fake=fake_anthropic, redis_url=redis_url, resume_window=5)
    b = await start_server(fake=fake_anthropic, redis_url=redis_url, resume_window=5)
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 2000, delay=0.01))
    async with aiohttp.ClientSession() as session, session.post(
        a.url + "/api/streams", json={"messages": [{"role": "user", "content": "hi"}]}
    ) as response:
        url = str((await response.json())["url"])
    async with await open_sse(a.url + url) as on_a, await open_sse(b.url + url) as on_b:
        await asyncio.gather(on_a.take(5), on_b.take(5))
        assert redis_server.command(b"FLUSHALL") == b"+OK\r\n"
        await asyncio.gather(on_a.read_all(timeout=DEATH_BOUND + 3),
                             on_b.read_all(timeout=DEATH_BOUND + 3))
    for stream in (on_a, on_b):
        assert stream.events[-1].type == "error", stream.events[-1]
        assert json.loads(stream.events[-1].data)["type"] == "generation_lost"
        ids = [int(e.last_event_id.split(":")[1]) for e in stream.events]
        assert ids == list(range(len(ids)))  # the end at the next id
        async with aiohttp.ClientSession() as session, session.get(
            b.url + url, headers={"Last-Event-ID": stream.last_id}
        ) as response:
            assert response.status == 204
    # The owner's generation stopped at its next append, and counts as lost, not an error.
    samples = await once_idle(a.url, 5, "the owner's generation")
    assert value(samples, "sseserver_generations_finished_total", ended="lost") == 1
    assert value(samples, "sseserver_generations_finished_total", ended="error") == 0
