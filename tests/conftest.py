"""Shared fixtures: the fake Anthropic API, the real app served on 127.0.0.1 in the test's
event loop, server processes (tests/support/processes.py) and Redis
(tests/support/redis_server.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
import uvloop
from aiohttp import web

from sseserver.app import create_app
from sseserver.config import Settings
from sseserver.connections import SSERunner

from .support.browser import browser, page
from .support.fake_anthropic import FakeAnthropic, fake_anthropic
from .support.processes import processes
from .support.redis_cluster import RedisCluster, require_redis_cluster_tools
from .support.redis_server import RedisServer, require_redis_server

__all__ = [
    "RunningServer",
    "StartServer",
    "browser",
    "fake_anthropic",
    "page",
    "processes",
    "redis_cluster",
    "redis_cluster_url",
    "redis_server",
    "redis_url",
    "some_redis_url",
    "start_server",
]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item,
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """A test that serves the real app in-process runs on both event loops `--loop`
    offers (`python -m sseserver` picks uvloop); other tests keep asyncio's."""
    if "start_server" not in getattr(item, "fixturenames", ()):
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@dataclass
class RunningServer:
    url: str
    app: web.Application
    runner: web.AppRunner
    settings: Settings

    def drop_connections(self) -> int:
        """Abort every open client connection, as a network drop would; returns how many."""
        server = self.runner.server
        assert server is not None
        dropped = 0
        for protocol in list(server.connections):
            if protocol.transport is not None:
                protocol.transport.abort()
                dropped += 1
        return dropped


class StartServer(Protocol):
    def __call__(
        self, *, fake: FakeAnthropic | None = None, **settings: Any
    ) -> Awaitable[RunningServer]: ...


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start the real app in this event loop, as `python -m sseserver` runs it (its runner:
    handler cancellation on, the connection limits of connections.py), with the anthropic
    provider pointed at `fake`, else the demo."""
    runners: list[web.AppRunner] = []

    async def start(*, fake: FakeAnthropic | None = None, **overrides: Any) -> RunningServer:
        # shutdown_grace 0: a test's teardown ends its generations at once instead of
        # waiting for them; the shutdown tests set it.
        values: dict[str, Any] = {"port": 0, "upstream_retries": 0, "shutdown_grace": 0}
        if fake is not None:
            values |= {
                "provider": "anthropic",
                "anthropic_api_key": fake.api_key,
                "anthropic_base_url": fake.base_url,
            }
        else:
            values |= {"provider": "demo", "demo_delay_ms": 1}
        settings = dataclasses.replace(Settings(), **(values | overrides))
        app = create_app(settings)
        runner = SSERunner(app, settings, shutdown_timeout=2)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return RunningServer(f"http://127.0.0.1:{port}", app, runner, settings)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()




@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests that stop Redis start their own)."""
    require_redis_server()
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    assert redis_server.command(b"FLUSHALL") == b"+OK\r\n"
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One Redis Cluster for the session: 3 masters, 3 replicas (tests/support/redis_cluster.py).
    A test that kills or reshards a node starts its own."""
    require_redis_cluster_tools()
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    """The session's cluster, emptied for this test (`redis+cluster://` and its masters)."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(params=["redis", "cluster"])
def some_redis_url(request: pytest.FixtureRequest) -> str:
    """One Redis, then a Redis Cluster, each emptied for the test."""
    name = "redis_url" if request.param == "redis" else "redis_cluster_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides that select each stream store in turn, for start_server()."""
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis_url")}
