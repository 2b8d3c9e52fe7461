"""The servers that cannot bind port 0 and report it (redis-server, nginx) get a port no
other socket can take before they bind it (tests/support/ports.py; docs/testing.md,
"Writing a test"). Another test's server binding that port in between is simulated by a
socket that binds and listens on it, at the worst moment: right after the port was picked."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .conftest import StartServer
from .support import nginx_server
from .support.nginx_server import nginx_workdir, running_nginx
from .support.ports import HeldPort
from .support.redis_server import RedisServer, require_redis_server

__all__ = ["nginx_workdir"]


class Occupants:
    """Sockets that took a port another server was meant to get, closed at the end."""

    def __init__(self) -> None:
        self.taken: list[socket.socket] = []
        self.refused: list[int] = []

    def occupy(self, port: int) -> None:
        """Bind and listen on `port` as any server would, if the kernel lets us."""
        other = socket.socket()
        try:
            other.bind(("127.0.0.1", port))
            other.listen()
        except OSError as error:
            other.close()
            if error.errno != errno.EADDRINUSE:
                raise
            self.refused.append(port)
        else:
            self.taken.append(other)

    def close(self) -> None:
        for other in self.taken:
            other.close()


@pytest.fixture
def occupants() -> Iterator[Occupants]:
    held = Occupants()
    yield held
    held.close()


def test_a_held_port_refuses_connections_and_other_sockets(occupants: Occupants) -> None:
    with HeldPort() as held:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", held.port), timeout=2).close()
        occupants.occupy(held.port)
        assert occupants.refused == [held.port]
    occupants.occupy(held.port)  # released: anyone may have it now
    assert len(occupants.taken) == 1


def test_redis_server_gets_its_port_though_another_socket_tried_first(
    occupants: Occupants,
) -> None:
    require_redis_server()
    redis = RedisServer()
    try:
        occupants.occupy(redis.port)
        redis.start()
        assert redis.command(b"PING") == b"+PONG\r\n"
        # Stopped, the port is still kept for the restart on the same URL.
        redis.stop()
        assert redis.command(b"PING") is None
        occupants.occupy(redis.port)
        redis.start()
        assert redis.command(b"PING") == b"+PONG\r\n"
    finally:
        redis.close()
    assert occupants.refused == [redis.port, redis.port]


async def test_nginx_gets_its_ports_though_another_socket_tried_first(
    start_server: StartServer, nginx_workdir: Path, occupants: Occupants,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Contested(HeldPort):
        def __init__(self) -> None:
            super().__init__()
            occupants.occupy(self.port)

    monkeypatch.setattr(nginx_server, "HeldPort", Contested)
    upstream = await start_server()
    async with running_nginx(nginx_workdir, [int(upstream.url.rsplit(":", 1)[1])]) as nginx:
        tls = nginx.certificate.client_context()
        async with aiohttp.ClientSession() as session:
            async with session.get(nginx.url + "/healthz", ssl=tls) as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
            async with session.get(nginx.http_url + "/", allow_redirects=False) as response:
                assert response.status == 308
    assert len(occupants.refused) == 2
