"""The streams API end to end: generations that outlive a connection, exact resume,
cancel rules, and slow subscribers (docs/protocol.md, "Ids and resume" and "Disconnects").
The tests taking `backend` run once with streams in memory and once in Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import aiohttp
import pytest

from sseserver.app_keys import FANOUT, STORE

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.sse_client import SSEStream, open_sse
from .support.waiting import until

WORDS = [f"word{i} " for i in range(40)]


async def _post(server: RunningServer, content: str = "hi") -> str:
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", json={"messages": [{"role": "user", "content": content}]}
    ) as response:
        assert response.status == 201
        body = await response.json()
        assert response.headers["Location"] == body["url"]
        assert body["url"] == f"/api/streams/{body['id']}"
        return str(body["url"])


async def _delete(server: RunningServer, url: str) -> int:
    async with aiohttp.ClientSession() as session, session.delete(server.url + url) as response:
        return response.status


def _signature(stream: SSEStream) -> list[tuple[str, str, str]]:
    return [(e.type, e.data, e.last_event_id) for e in stream.events]


@pytest.mark.parametrize("route", ["/api/sse", "/api/streams"])
async def test_drop_after_5_events_and_resume_with_last_event_id(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    backend: dict[str, Any], route: str
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5, **backend)
    fake_anthropic.enqueue(Reply(chunks=WORDS, delay=0.01))
    url = "/api/sse?message=hi" if route == "/api/sse" else await _post(server)
    first = await open_sse(server.url + url)
    await first.take(5)
    await first.close()
    last_id = first.last_id
    # EventSource reconnects to the same URL with the last id it saw.
    async with await open_sse(server.url + url, headers={"Last-Event-ID": last_id}) as second:
        await second.read_all()
    assert first.text + second.text == "".join(WORDS)
    assert second.types()[-2:] == ["usage", "done"]
    stream_id, index = last_id.split(":")
    assert second.events[0].last_event_id == f"{stream_id}:{int(index) + 1}"  # nothing twice
    assert len(fake_anthropic.requests) == 1  # no second generation


async def test_last_event_id_query_parameter_and_header_precedence(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5)
    fake_anthropic.enqueue(Reply(chunks=WORDS))
    url = await _post(server)
    async with await open_sse(server.url + url) as full:
        await full.read_all()
    third_id = full.events[3].last_event_id
    async with await open_sse(f"{server.url}{url}?lastEventId={third_id}") as from_query:
        await from_query.read_all()
    assert _signature(from_query) == _signature(full)[4:]
    # The header wins when both are present.
    fifth_id = full.events[5].last_event_id
    async with await open_sse(f"{server.url}{url}?lastEventId={third_id}",
                              headers={"Last-Event-ID": fifth_id}) as both:
        await both.read_all()
    assert _signature(both) == _signature(full)[6:]
    # An empty header wins too: no resume point, so the stream from its start.
    async with await open_sse(f"{server.url}{url}?lastEventId={third_id}",
                              headers={"Last-Event-ID": ""}) as empty:
        await empty.read_all()
    assert _signature(empty) == _signature(full)
    assert len(fake_anthropic.requests) == 1


async def test_after_done_a_reconnect_gets_204_and_no_second_generation(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=5)
    fake_anthropic.enqueue(Reply(chunks=WORDS))
    async with await open_sse(server.url + "/api/sse?message=hi") as stream:
        await stream.read_all()
    for url in ("/api/sse?message=hi", f"/api/streams/{stream.last_id.split(':')[0]}"):
        async with aiohttp.ClientSession() as session, session.get(
            server.url + url, headers={"Last-Event-ID": stream.last_id}
        ) as response:
            assert response.status == 204
            assert await response.read() == b""
    assert len(fake_anthropic.requests) == 1


async def test_a_finished_stream_is_freed_after_the_window(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=0.3)
    fake_anthropic.enqueue(Reply(chunks=["a", "b"]))
    url = await _post(server)
    async with await open_sse(server.url + url) as stream:
        await stream.read_all()
    async with await open_sse(server.url + url) as again:  # still held: full replay
        await again.read_all()
    assert _signature(again) == _signature(stream)

    async def freed() -> bool:
        async with aiohttp.ClientSession() as session, session.get(
            server.url + url
        ) as response:
            return response.status == 404

    await until(freed, what="404 once the window is over")
    async with aiohttp.ClientSession() as session, session.get(
        server.url + url, headers={"Last-Event-ID": stream.events[1].last_event_id}
    ) as response:
        assert response.status == 204


async def test_two_subscribers_receive_identical_sequences(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    fake_anthropic.enqueue(Reply(chunks=WORDS, delay=0.005))
    url = await _post(server)
    one, two = await open_sse(server.url + url), await open_sse(server.url + url)
    async with one, two:
        await asyncio.gather(one.read_all(), two.read_all())
    assert _signature(one) == _signature(two)
    assert one.text == "".join(WORDS)
    assert bytes(one.raw) == bytes(two.raw)


async def test_delete_cancels_the_upstream_within_100ms(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    url = await _post(server)
    async with await open_sse(server.url + url) as stream:
        await stream.take(3)
        asked_at = time.monotonic()
        assert await _delete(server, url) == 204
        closed_at = await fake_anthropic.wait_closed(0, timeout=2)
        await stream.read_all()
    latency_ms = (closed_at - asked_at) * 1000
    print(f"DELETE closed the upstream in {latency_ms:.1f} ms")
    assert latency_ms < 100
    assert stream.types()[-2:] == ["usage", "done"]
    usage = json.loads(stream.events[-2].data)
    assert usage["stop_reason"] == "cancelled"
    assert usage["cancel_reason"] == "deleted"
    assert usage["output_tokens"] == stream.types().count("message")
    assert await _delete(server, url) == 204  # idempotent once ended


@pytest.mark.parametrize("window", [0.0, 2.0])
async def test_last_subscriber_gone_cancels_after_the_resume_window(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    backend: dict[str, Any], window: float
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=window, **backend)
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 1000, delay=0.01))
    stream = await open_sse(server.url + "/api/sse?message=hi")
    await stream.take(3)
    left_at = time.monotonic()
    await stream.close()
    closed_at = await fake_anthropic.wait_closed(0, timeout=window + 2)
    after = closed_at - left_at
    print(f"resume window {window}s: upstream closed {after * 1000:.0f} ms after the client left")
    if window == 0:
        assert after < 0.1
    else:
        assert window - 0.5 <= after <= window + 0.5
        # Kept for the window: its end says why it was cancelled.
        async with await open_sse(server.url + "/api/sse?message=hi",
                                  headers={"Last-Event-ID": stream.last_id}) as rest:
            await rest.read_all()
        usage = json.loads(rest.events[-2].data)
        assert (usage["stop_reason"], usage["cancel_reason"]) == ("cancelled", "no_reader")


async def test_a_subscriber_coming_back_within_the_window_keeps_the_generation(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    backend: dict[str, Any]
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=1, **backend)
    fake_anthropic.enqueue(Reply(chunks=WORDS, delay=0.05))
    first = await open_sse(server.url + "/api/sse?message=hi")
    await first.take(3)
    await first.close()
    await asyncio.sleep(0.6)  # gone for less than the window
    async with await open_sse(server.url + "/api/sse?message=hi",
                              headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    assert first.text + second.text == "".join(WORDS)
    assert second.types()[-2:] == ["usage", "done"]
    assert json.loads(second.events[-2].data)["stop_reason"] == "end_turn"


async def test_slow_subscriber_is_dropped_and_others_are_not_slowed(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    from sseserver.serving import WRITE_BUFFER_CAP

    caplog.set_level(logging.INFO, logger="sseserver.subscriber")
    server = await start_server(fake=fake_anthropic, send_timeout=1, resume_window=5)
    chunks = [f"{i:04d}" + "x" * 20_000 for i in range(300)]  # 6 MB in all
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.01))
    url = await _post(server)
    port = int(server.url.rsplit(":", 1)[1])
    # A client that never reads, with a tiny receive buffer.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(slow, ("127.0.0.1", port))
    await loop.sock_sendall(slow, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    fast = await open_sse(server.url + url)
    largest_buffer = 0
    arrival_gaps: list[float] = []

    async def watch_buffers() -> None:
        nonlocal largest_buffer
        assert server.runner.server is not None
        while True:
            for protocol in server.runner.server.connections:
                if protocol.transport is not None:
                    largest_buffer = max(largest_buffer,
                                         protocol.transport.get_write_buffer_size())
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_buffers())
    started = time.monotonic()
    try:
        last = time.monotonic()
        while (event := await fast.next_event(timeout=5)) is not None:
            now = time.monotonic()
            arrival_gaps.append(now - last)
            last = now
            if event.type == "done":
                break
    finally:
        watcher.cancel()
        await fast.close()
    elapsed = time.monotonic() - started
    assert fast.text == "".join(chunks)
    print(f"fast subscriber: 6 MB in {elapsed:.2f}s, largest gap {max(arrival_gaps) * 1000:.0f}"
          f" ms; largest server write buffer {largest_buffer} B (cap {WRITE_BUFFER_CAP})")
    assert max(arrival_gaps) < 0.5  # never held up by the slow one
    assert largest_buffer <= WRITE_BUFFER_CAP
    # The slow one was dropped: the server closed its connection part-way, so reading
    # what the kernel holds reaches the end of the connection without the `done` event.
    # Two mechanisms drop it, whichever comes first: our write deadline (it logs), or the
    # kernel, which resets a connection whose window stayed shut for TCP_USER_TIMEOUT
    # (= --send-timeout, sockets.py); the kernel's clock starts when the window closes,
    # before our buffer fills, so it usually wins here.
    received = bytearray()
    reset = False
    try:
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(slow, 1 << 20):
                received += chunk
    except ConnectionResetError:
        reset = True
    finally:
        slow.close()
    assert b"event: done" not in received
    assert len(received) < 6_000_000
    assert reset or "dropped slow subscriber" in caplog.text


async def test_shutdown_ends_streams_with_server_shutdown_and_closes_upstreams(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    stream = await open_sse(server.url + "/api/sse?message=hi")
    async with stream:
        await stream.take(3)
        started = time.monotonic()
        await server.runner.cleanup()
        await stream.read_all()
        took = time.monotonic() - started
    assert stream.types()[-1] == "error"
    assert json.loads(stream.events[-1].data)["type"] == "server_shutdown"
    assert fake_anthropic.requests[0].closed_at is not None
    assert took < 1


async def test_an_http_1_0_client_gets_the_whole_stream_unchunked(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """Pushed frames are HTTP/1.1 chunks; an HTTP/1.0 response has no chunking, so such a
    client is served by reading (ApacheBench and some proxies still speak 1.0)."""
    from .support.sse_parser import parse_all

    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=WORDS, delay=0.002))
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /api/sse?message=hi HTTP/1.0\r\nHost: x\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert b"chunked" not in head.lower()
    events = parse_all(body)
    assert "".join(json.loads(e.data) for e in events if e.type == "message") == "".join(WORDS)
    assert events[-1].type == "done"


async def test_a_stream_the_store_no_longer_holds_mid_read_ends_with_generation_lost(
    start_server: StartServer,
) -> None:
    """A response never stops without its end (docs/protocol.md, "Error events"): when the
    store answers a reader that has begun that it no longer holds the stream (Redis lost
    it in a failover or a restart, or retention freed it while the reader was behind), the
    reader gets `generation_lost` at its position, not a response that just stops."""
    server = await start_server(demo_delay_ms=50, demo_tokens=40)
    store = server.app[STORE]
    # A reader that reads the store (one behind, or on HTTP/1.0) rather than being pushed to.
    server.app[FANOUT].follow = lambda *args: False  # type: ignore[method-assign]
    async with await open_sse(server.url + "/api/sse?message=hi") as stream:
        await stream.take(4)
        real_read = store.read

        async def forgotten(stream_id: str, start: int, wait: float) -> None:
            return None

        store.read = forgotten  # type: ignore[method-assign]
        try:
            await stream.read_all(timeout=5)
        finally:
            store.read = real_read  # type: ignore[method-assign]
    last = stream.events[-1]
    assert last.type == "error"
    assert json.loads(last.data)["type"] == "generation_lost"
    index = int(last.last_event_id.rsplit(":", 1)[1])
    assert index == len(stream.events) - 1  # the next id after the last frame it had
