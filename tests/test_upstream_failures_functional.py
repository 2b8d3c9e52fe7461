"""Claude's API out of reach, through the real server: each way a request can fail before
any answer (refused, a name that does not resolve, a TLS handshake with a plain-HTTP
server, a reset, silence) ends the stream with one `error` event that names the host and
the cause; `/healthz` says `degraded` with that reason until a request gets through, and
each kind is logged once (docs/protocol.md, "Error events"; docs/operations.md, "Logs").

Everything is on loopback: the "upstream" is a small TCP server here whose behaviour the
test switches, forwarding to the fake Anthropic API once it should work again; the name
that does not resolve is under `.invalid`, which no resolver answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.ports import HeldPort
from .support.sse_client import open_sse

Mode = Literal["reset", "stall", "plain", "forward"]
KEY = "sk-ant-upstream-failures-test-key"


class Upstream:
    """A TCP server on 127.0.0.1 that resets, stalls, answers plain HTTP (to a TLS
    client), or forwards to `target` (the fake)."""

    def __init__(self, target_port: int) -> None:
        self.mode: Mode = "reset"
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.mode == "forward":
                await self._forward(reader, writer)
                return
            await reader.read(1024)
            if self.mode == "reset":  # SO_LINGER 0: close sends an RST
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            elif self.mode == "plain":
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                writer.close()
            else:  # stall: hold the connection, say nothing
                await reader.read()
                writer.close()
        except (ConnectionError, asyncio.CancelledError):
            writer.transport.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def upstream(fake_anthropic: FakeAnthropic) -> AsyncIterator[Upstream]:
    proxy = Upstream(fake_anthropic.port)
    proxy.server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.port = proxy.server.sockets[0].getsockname()[1]
    yield proxy
    proxy.server.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2):
            await proxy.server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, held for the test (tests/support/ports.py): a
    released one could be taken by another test's server before the request."""
    with HeldPort() as held:
        yield held.port


async def start(start_server: StartServer, base_url: str, key: str = KEY) -> RunningServer:
    return await start_server(provider="anthropic", anthropic_api_key=key,
                              anthropic_base_url=base_url, upstream_timeout=0.5)


async def error_of(server: RunningServer) -> dict[str, Any]:
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        events = await stream.read_all()
    assert stream.types() == ["meta", "error"]
    error: dict[str, Any] = json.loads(events[-1].data)
    return error


async def health(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(server.url + "/healthz") as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def test_a_refused_connection_names_the_host(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, closed_port: int
) -> None:
    caplog.set_level(logging.INFO)
    port = closed_port
    server = await start(start_server, f"http://127.0.0.1:{port}")
    assert (await health(server))["status"] == "ok"
    message = f"Could not connect to 127.0.0.1:{port}: the connection was refused."
    for _ in range(3):
        assert await error_of(server) == {"type": "upstream_unavailable", "message": message}
    body = await health(server)
    assert body["status"] == "degraded"
    assert body["reason"].startswith("3 upstream requests in a row failed, the last 0 s ago: ")
    assert body["reason"].endswith(message)
    # Three failures of one kind, one log line, naming the cause and never the key.
    logged = [r.getMessage() for r in caplog.records if r.name == "sseserver.upstream"]
    assert logged == [f"upstream request failed (refused): {message} Logged once until a "
                      f"request to 127.0.0.1:{port} gets an answer."]
    assert KEY not in caplog.text


async def test_a_name_that_does_not_resolve_is_dns(start_server: StartServer) -> None:
    server = await start(start_server, "http://api.anthropic.invalid")
    assert await error_of(server) == {
        "type": "upstream_unavailable",
        "message": "Could not connect to api.anthropic.invalid: its name does not resolve (DNS).",
    }
    assert (await health(server))["status"] == "degraded"


@pytest.mark.parametrize(
    ("mode", "scheme", "error_type", "message"),
    [
        pytest.param("plain", "https", "upstream_unavailable",
                     "Could not connect to {host}: the TLS handshake failed (wrong version "
                     "number).", id="tls"),
        pytest.param("reset", "http", "upstream_unavailable",
                     "The connection to {host} was reset.", id="reset"),
        pytest.param("stall", "http", "upstream_timeout",
                     "Claude did not answer in time: {host} sent nothing for too long.",
                     id="timeout"),
    ],
)
async def test_each_failure_is_named_then_health_recovers_once_a_request_succeeds(
    start_server: StartServer, fake_anthropic: FakeAnthropic, upstream: Upstream,
    caplog: pytest.LogCaptureFixture, mode: Mode, scheme: str, error_type: str, message: str,
) -> None:
    caplog.set_level(logging.INFO)
    host = f"127.0.0.1:{upstream.port}"
    upstream.mode = mode
    server = await start(start_server, f"{scheme}://{host}", fake_anthropic.api_key)
    assert await error_of(server) == {"type": error_type, "message": message.format(host=host)}
    body = await health(server)
    assert body["status"] == "degraded"
    assert body["reason"].endswith(message.format(host=host))
    if scheme == "https":
        return  # a TLS client cannot be forwarded to the plain-HTTP fake
    # The API answers again: the next reply streams, and the status is ok.
    upstream.mode = "forward"
    fake_anthropic.enqueue(Reply(chunks=["back ", "again"]))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.text == "back again"
    body = await health(server)
    assert body["status"] == "ok"
    assert "reason" not in body
    logged = [r.getMessage() for r in caplog.records if r.name == "sseserver.upstream"]
    assert logged[-1] == f"{host} answers again after 1 failed request(s)"
