"""Hostile and careless clients, through the real server: races on the limits, oversized
and unfinished request heads, idle and slow connections, requests whose handling raises
inside the server, and resume points beyond a stream (docs/operations.md, "Limits and
timeouts")."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import socket
import time
import zlib
from typing import Any

import aiohttp
import pytest

from sseserver.app_keys import GENERATIONS
from sseserver.generations import FIRST_SUBSCRIBER_GRACE

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.raw_http import exchange, host_port, parse_answer, request
from .support.waiting import until

BODY = {"messages": [{"role": "user", "content": "hi"}]}
MIB = 1024 * 1024


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
    """`Last-Event-ID: <id>:999999999` on a running stream is a 400 on either store
    (not a 200 of pings that ends without `usage` or `done`), while a resume from an event
    the stream has still works."""
    server = await start_server(demo_delay_ms=50, demo_tokens=40, **backend)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/streams", json=BODY) as response:
            url = (await response.json())["url"]
        stream_id = url.rsplit("/", 1)[1]
        async with session.get(server.url + url) as first:  # running, and read from here
            assert (await first.content.readuntil(b"event: message\n")).count(b"id: ") == 2
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
            await first.read()
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
    """Each raises inside the server (OSError, ValueError, RecursionError,
    RequestPayloadError) and gets a JSON 4xx, one access-log line, and nothing at WARNING
    or above: no 500, no traceback, no second log of the compressed bodies."""
    server = await start_server(access_token=TOKEN, max_body_bytes=300_000)
    caplog.set_level(logging.INFO)
    answer = await exchange(server.url, raw)
    assert answer.status == status, answer
    assert answer.error()["type"] == error_type
    assert answer.headers["x-content-type-options"] == "nosniff"
    # The access-log line comes after the answer is sent.
    await until(lambda: any(r.name == "aiohttp.access" for r in caplog.records),
                what="the access-log line")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(r.exc_info is None for r in caplog.records)
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) == 1
    assert f'" {status} ' in access[0].getMessage()
    assert server.app[GENERATIONS].active == 0


# ---- request heads: size, count, time ----

LINE_8K = b"X-Filler: " + b"f" * 8000 + b"\r\n"


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        pytest.param(b"GET /api/sse?message=" + b"m" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                     414, "The request line is longer than 8190 bytes; send long messages "
                     "with POST /api/streams.", id="request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + LINE_8K * 5 + b"\r\n",
                     431, "The request's headers are larger than 32768 bytes in all, or more "
                     "than 100.", id="head-over-32k"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                     + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n",
                     431, None, id="101-headers"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
                     431, "A header line is longer than 8190 bytes.", id="header-line"),
    ],
)
async def test_oversized_heads_get_a_json_refusal(
    start_server: StartServer, token: str | None, head: bytes, status: int, message: str | None
) -> None:
    server = await start_server(access_token=token)
    answer = await exchange(server.url, head)
    assert answer.status == status
    error = answer.error()
    assert error["type"] == "request_too_large"
    if message is not None:
        assert error["message"] == message
    assert answer.headers["x-content-type-options"] == "nosniff"


async def test_heads_within_the_bounds_are_served(start_server: StartServer) -> None:
    """The bounds are not over-eager: a request line of 8,100 bytes, three 8 KB headers
    (24 KB in all) and 99 headers are all fine."""
    server = await start_server()
    for head in [
        b"GET /healthz?x=" + b"x" * 8060 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + LINE_8K * 3 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(98)) + b"\r\n",
    ]:
        answer = await exchange(server.url, head)
        assert answer.status == 200, (head[:80], answer)
        assert answer.json()["status"] == "ok"


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(url)
    return await asyncio.open_connection(host, port)


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reading whatever it sends)."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        while await reader.read(65536):
            pass
    return time.monotonic() - started


async def test_a_silent_connection_is_closed_at_the_request_deadline(
    start_server: StartServer,
) -> None:
    server = await start_server(request_timeout=1)
    reader, writer = await _open(server.url)
    try:
        assert 0.9 <= await _closed_after(reader, 5) < 1.5
    finally:
        writer.close()


async def test_a_byte_by_byte_head_is_closed_at_the_request_deadline(
    start_server: StartServer,
) -> None:
    """One byte every 50 ms, on a new connection and on a kept-alive one: the deadline
    runs from the connection's start, or from the next head's first byte."""
    server = await start_server(request_timeout=1)
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    reader, writer = await _open(server.url)

    async def trickle() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    try:
        sender = asyncio.create_task(trickle())
        assert 0.9 <= await _closed_after(reader, 5) < 1.5
        sender.cancel()
    finally:
        writer.close()

    reader, writer = await _open(server.url)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.2)  # idle, within --keepalive-timeout: kept
        sender = asyncio.create_task(trickle())
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):  # the rest of the first answer, then EOF
            async with asyncio.timeout(5):
                while await reader.read(65536):
                    pass
        assert 0.9 <= time.monotonic() - started < 1.5
        sender.cancel()
    finally:
        writer.close()


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout_but_sse_is_not_idle(
    start_server: StartServer,
) -> None:
    server = await start_server(keepalive_timeout=1, request_timeout=1, demo_delay_ms=100,
                                demo_tokens=25)
    reader, writer = await _open(server.url)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert 0.9 <= await _closed_after(reader, 5) < 1.6
    finally:
        writer.close()
    # A 2.5 s stream outlives both timeouts, and ends with `done`.
    answer = await exchange(server.url, request("GET", "/api/sse?message=hi"))
    assert answer.status == 200
    assert answer.body.endswith(b'event: done\ndata: "[DONE]"\n\n')


async def test_connections_beyond_max_connections_get_503(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_connections=3)
    held = [await _open(server.url) for _ in range(3)]
    for reader, writer in held:  # each served once, and kept alive
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
    answer = await exchange(server.url, request("GET", "/healthz"))
    assert answer.status == 503
    assert answer.error()["type"] == "overloaded_error"
    assert answer.headers["retry-after"] == "5"
    assert any("turning connections away: 3 open" in r.getMessage() for r in caplog.records)
    held.pop()[1].close()

    async def served() -> bool:
        return (await exchange(server.url, request("GET", "/healthz"))).status == 200

    # The server sees the close a moment later; then the freed slot serves again.
    await until(served, what="a connection served once one of the 3 closed")
    for _, writer in held:
        writer.close()


# ---- a server with a key: what a POST costs, per-client defaults, bodies ----


async def _post_stream(session: aiohttp.ClientSession, url: str,
                       body: object = BODY) -> tuple[int, dict[str, Any]]:
    async with session.post(url + "/api/streams", json=body) as response:
        return response.status, await response.json()


async def test_a_post_nobody_subscribes_to_never_calls_the_upstream(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing is asked of the upstream until a first subscriber attaches, so a stream
    nobody opens costs no token; it still counts against the limits, and is freed after
    the first-subscriber grace."""
    server = await start_server(fake=fake_anthropic, resume_window=2)  # grace: 5 s
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        status, created = await _post_stream(session, server.url)
        assert status == 201
        await asyncio.sleep(0.5)
        assert fake_anthropic.requests == []
        assert server.app[GENERATIONS].active == 1  # counted all the same
        for _ in range(int((FIRST_SUBSCRIBER_GRACE + 2) * 10)):
            if server.app[GENERATIONS].active == 0:
                break
            await asyncio.sleep(0.1)
        assert server.app[GENERATIONS].active == 0
        assert fake_anthropic.requests == []
        # Within the resume window, the ended stream reads as such: nothing generated.
        async with session.get(server.url + created["url"]) as response:
            body = await response.text()
    assert body.count("event: message") == 0
    assert '"output_tokens":0,"stop_reason":"cancelled"' in body
    assert '"cancel_reason":"no_reader"}' in body  # why, in the stream itself
    assert body.endswith('event: done\ndata: "[DONE]"\n\n')
    lines = [r.getMessage() for r in caplog.records if r.name == "sseserver.generations"]
    assert len(lines) == 1
    assert "ttft=- events=3 " in lines[0]
    assert " output_tokens=0 " in lines[0]
    assert lines[0].endswith("ended=client_gone cancel_reason=no_reader (nobody opened the stream)")


async def test_the_first_subscriber_starts_the_upstream(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=["Hello", " there"]))
    async with aiohttp.ClientSession() as session:
        status, created = await _post_stream(session, server.url)
        assert status == 201
        await asyncio.sleep(0.2)
        assert fake_anthropic.requests == []
        async with session.get(server.url + created["url"]) as response:
            body = await response.text()
    assert len(fake_anthropic.requests) == 1
    assert 'data: "Hello"' in body
    assert 'data: " there"' in body
    assert body.endswith('event: done\ndata: "[DONE]"\n\n')


def _non_loopback_address() -> str | None:
    """An address of this machine beyond loopback, to connect from (connecting to
    127.0.0.1 from it works on Linux; no packet leaves the machine)."""
    for target in ("192.0.2.1", "198.51.100.1", "203.0.113.1"):  # documentation ranges
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))  # UDP: picks a route, sends nothing
            except OSError:
                continue
            address = str(probe.getsockname()[0])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


async def test_the_per_client_default_limits_addresses_beyond_loopback_only(
    start_server: StartServer,
) -> None:
    """Without --max-streams-per-client, a client beyond loopback may run 4 generations;
    a loopback client (a load test, a proxy on this host) is not limited."""
    address = _non_loopback_address()
    if address is None:
        message = "this machine has no address beyond loopback to connect from"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = await start_server(demo_delay_ms=200)
    remote = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=remote) as session:
        answers = [await _post_stream(session, server.url) for _ in range(5)]
    assert [status for status, _ in answers] == [201] * 4 + [429]
    assert answers[4][1]["error"]["type"] == "rate_limit_error"
    async with aiohttp.ClientSession() as session:
        local = [await _post_stream(session, server.url) for _ in range(8)]
        assert [status for status, _ in local] == [201] * 8
        for _, created in [*answers[:4], *local]:
            async with session.delete(server.url + created["url"]) as response:
                assert response.status == 204


async def test_request_bodies_held_at_once_are_bounded(start_server: StartServer) -> None:
    """Two bodies of 1 MB on their way hold 1.8 MB; with --max-body-bytes-total 2 MiB a
    third of 300 KB gets 503 at once, and a body that completes is served as usual."""
    server = await start_server(max_body_bytes_total=2 * MIB, max_message_chars=1_000_000,
                                demo_delay_ms=1)
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 999_950}]}).encode()
    head = request("POST", "/api/streams", [JSON], body)
    head, payload = head[:len(head) - len(body)], body
    host, port = host_port(server.url)
    partial = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head + payload[:900_000])
        partial.append((reader, writer))
    from sseserver.app_keys import BODY_BUDGET  # here: the module imports on older code too

    budget = server.app[BODY_BUDGET]
    for _ in range(100):
        if budget.held >= 1_800_000:
            break
        await asyncio.sleep(0.02)
    assert budget.held == 1_800_000
    small = json.dumps({"messages": [{"role": "user", "content": "y" * 300_000}]}).encode()
    third = await exchange(server.url, request("POST", "/api/streams", [JSON], small))
    assert third.status == 503
    assert third.error() == {
        "type": "overloaded_error",
        "message": "The server is receiving too many requests at once; try again shortly.",
    }
    assert third.headers["retry-after"] == "1"
    reader, writer = partial[0]
    writer.write(payload[900_000:])
    answer = parse_answer(await reader.read())
    assert answer.status == 201
    for _, writer in partial:
        writer.close()
    for _ in range(100):
        if budget.held == 0:
            break
        await asyncio.sleep(0.02)
    assert budget.held == 0


async def test_a_body_that_does_not_arrive_in_time_gets_408(start_server: StartServer) -> None:
    server = await start_server(request_timeout=1)
    host, port = host_port(server.url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        raw = request("POST", "/api/streams", [JSON], b"x" * 100)
        writer.write(raw[:-90])  # the head, and 10 of the 100 bytes
        started = time.monotonic()
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head)[1])  # type: ignore[index]
            answer = parse_answer(head + await reader.readexactly(length))
        assert 0.9 <= time.monotonic() - started < 1.5
    finally:
        writer.close()
    assert answer.status == 408
    assert answer.error() == {"type": "timeout_error",
                              "message": "The request body did not arrive in time."}
