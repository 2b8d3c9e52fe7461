"""Redis at scale, with real processes (docs/architecture.md, "The stores"): a process
holds a fixed number of Redis connections whatever its subscribers; two processes on one
Redis, or on a cluster of 3 masters, carry the load one in-memory process would; a slow
Redis slows nothing down."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import pytest

from sseserver.store.redis.connection import MAX_CONNECTIONS

from .support.processes import Processes, ServerProcess
from .support.redis_cluster import RedisCluster
from .support.redis_server import RedisServer

TOKENS: Final = 100
PACE_MS: Final = 200
STREAMS_PER_PROCESS: Final = 1000


def _token(server: ServerProcess) -> str:
    match = re.search(r"process token ([0-9a-f]+)", server.log)
    assert match, server.log
    return match.group(1)


def _connections_of(nodes: list[RedisServer], token: str) -> int:
    """The process's connections to every node, by their client names."""
    count = 0
    for node in nodes:
        listing = node.command(b"CLIENT", b"LIST")
        assert listing is not None, "redis-server did not answer"
        count += sum(f" name=sseserver-{token}" in line for line in listing.decode().splitlines())
    return count


@pytest.fixture(params=["redis", "cluster"])
def store(request: pytest.FixtureRequest) -> tuple[str, list[RedisServer], int]:
    """One Redis, then the session's cluster of 3 masters, each emptied for the test: the
    URL, the nodes a process may connect to, and the most connections it may hold there
    (on a cluster 8 + 2 x masters, docs/operations.md)."""
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return str(request.getfixturevalue("redis_url")), [redis], MAX_CONNECTIONS
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    url = str(request.getfixturevalue("redis_cluster_url"))
    return url, list(cluster.nodes), 8 + 2 * len(cluster.masters())


async def _post(server: ServerProcess, session: aiohttp.ClientSession) -> str:
    async with session.post(server.url + "/api/streams", json={
        "messages": [{"role": "user", "content": "hi"}]
    }) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


class _Subscribers:
    """Raw SSE connections, cheap enough to hold thousands of from one test."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self, server: ServerProcess, path: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        self._writers.append(writer)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        seen = b""
        while b"event: message" not in seen:  # attached and following
            chunk = await reader.read(65536)
            assert chunk, seen
            seen += chunk

    def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


@pytest.fixture
async def subscribers() -> AsyncIterator[_Subscribers]:
    opened = _Subscribers()
    yield opened
    opened.close()


async def test_a_process_holds_the_same_few_redis_connections_for_20_or_2000_subscribers(
    processes: Processes, store: tuple[str, list[RedisServer], int],
    subscribers: _Subscribers,
) -> None:
    """B serves subscribers of streams A generates: every frame reaches B through its one
    reader (per master). Its connections are counted by their client names in each node's
    CLIENT LIST."""
    redis_url, nodes, most = store
    paced = ("--redis-url", redis_url, "--demo-delay-ms", "500", "--demo-tokens", "400")
    a = await processes.sseserver(None, *paced)
    b = await processes.sseserver(None, *paced)
    async with aiohttp.ClientSession() as session:
        paths = [await _post(a, session) for _ in range(100)]
    await asyncio.gather(*(subscribers.open(b, path) for path in paths[:20]))
    at_20 = _connections_of(nodes, _token(b))
    for start in range(20, 2000, 250):
        await asyncio.gather(*(
            subscribers.open(b, paths[i % len(paths)]) for i in range(start, start + 250)
        ))
    at_2000 = _connections_of(nodes, _token(b))
    print(f"B's Redis connections: {at_20} with 20 subscribers, {at_2000} with 2,000 "
          f"(at most {most})")
    assert at_20 == at_2000
    assert 0 < at_2000 <= most


async def _two_loaded(
    processes: Processes, redis_url: str, streams: int, *extra: str,
) -> list[dict[str, Any]]:
    """Two processes on one Redis, each loaded by its own load generator."""
    args = ("--redis-url", redis_url, "--demo-delay-ms", str(PACE_MS),
            "--demo-tokens", str(TOKENS), *extra)
    servers = [await processes.sseserver(None, *args) for _ in range(2)]
    return list(await asyncio.gather(*(
        processes.loadgen(
            server.url, "-c", str(streams), "-n", str(streams),
            "--pace-ms", str(PACE_MS), "--expect-messages", str(TOKENS),
            "--connect-concurrency", "200", "--server-pid", str(server.pid),
        )
        for server in servers
    )))


def _assert_paced_and_exact(
    reports: list[dict[str, Any]], streams: int, *, first_event_ms: float | None = 500,
) -> None:
    for report in reports:
        gap, ttfe = report["inter_event_ms"], report["ttfe_ms"]
        print(f"{report['url']}: {report['streams']['completed']} streams, gap p50 "
              f"{gap['p50']:.1f} p99 {gap['p99']:.1f} ms, first event p99 {ttfe['p99']:.1f} ms, "
              f"server CPU {report['server']['cpu_pct']:.0f}%, errors {report['errors']}")
    for report in reports:
        assert report["verification"]["ok"], report["verification"]
        assert report["errors"] == {}  # no generation_lost, no 503, nothing
        assert report["streams"]["completed"] == streams
        assert report["inter_event_ms"]["p99"] <= PACE_MS + 50
        if first_event_ms is not None:
            assert report["ttfe_ms"]["p99"] <= first_event_ms


@pytest.mark.scale
async def test_two_processes_on_redis_or_a_cluster_carry_2x1000_paced_streams(
    processes: Processes, store: tuple[str, list[RedisServer], int],
) -> None:
    """Two processes on one Redis, then on a cluster of 3 masters, each loaded by its own
    load generator on this 2-core machine: every stream exact, paced, and none lost.
    `make bench-redis` runs the full 2 x 1,500 beside one in-memory process
    (docs/performance.md, "Redis")."""
    reports = await _two_loaded(processes, store[0], STREAMS_PER_PROCESS)
    _assert_paced_and_exact(reports, STREAMS_PER_PROCESS)


class _DelayingProxy:
    """A TCP proxy that holds every chunk `delay` seconds, in each direction, in order."""

    def __init__(self, port: int, delay: float) -> None:
        self._target = port
        self._delay = delay
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(65536):
            loop.call_later(self._delay, _write_if_open, writer, data)
        loop.call_later(self._delay, writer.close)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()


def _write_if_open(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.transport.is_closing():
        writer.write(data)


async def test_20ms_more_to_redis_each_way_leaves_500_streams_exact_and_paced(
    processes: Processes, redis_server: RedisServer, redis_url: str,
) -> None:
    proxy = _DelayingProxy(redis_server.port, delay=0.020)
    await proxy.start()
    try:
        slow_url = f"redis://127.0.0.1:{proxy.port}/0"
        server = await processes.sseserver(
            None, "--redis-url", slow_url, "--demo-delay-ms", str(PACE_MS),
            "--demo-tokens", str(TOKENS),
        )
        started = time.monotonic()
        report = await processes.loadgen(
            server.url, "-c", "500", "-n", "500", "--mode", "streams",
            "--pace-ms", str(PACE_MS), "--expect-messages", str(TOKENS),
        )
        print(f"through a 20 ms proxy: {time.monotonic() - started:.1f} s")
        # Each creation waits for one batch: a round trip of 40 ms more; not bounded here.
        _assert_paced_and_exact([{**report, "server": {"cpu_pct": 0}}], 500,
                                first_event_ms=None)
    finally:
        await proxy.close()


async def test_the_proxy_really_delays() -> None:
    """The slow-Redis test means something only if its proxy adds what it says."""
    echoes: list[asyncio.StreamWriter] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        echoes.append(writer)
        while data := await reader.read(65536):
            writer.write(data)

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = _DelayingProxy(server.sockets[0].getsockname()[1], delay=0.020)
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    started = time.monotonic()
    writer.write(b"ping")
    await reader.readexactly(4)
    elapsed = time.monotonic() - started
    writer.transport.abort()
    await proxy.close()
    for echoed in echoes:
        echoed.transport.abort()
    server.close()
    await server.wait_closed()
    assert 0.040 <= elapsed < 0.2
