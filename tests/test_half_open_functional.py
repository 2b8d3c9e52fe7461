"""Half-open connections: a client that vanishes without a FIN or RST is found, and its
upstream cancelled, within a bound.

The simulation, and why it is honest: the client runs in a network namespace this test
makes (`ip netns add`, a veth pair on 10.231.7.0/30, nothing routed beyond it), connected
to the real app listening on the host end. Once the client has its first token, every
packet on the link is dropped in both directions by a `pfifo` qdisc of length 0 on each
veth end: the client process still holds its socket open, but nothing it sends (ACKs
included) arrives, and nothing reaches it, exactly like a laptop whose lid closed or a
phone that left the network. (`tc netem` and `iptables` would do the same, but not every
kernel has netem or tc classifiers, and a zero-length queue needs neither.) The upstream is
`Silent` (Claude thinking), so only heartbeats flow: the hardest case.

Bound (sockets.py): --heartbeat + --send-timeout to find the client, + --resume-window to
cancel the upstream, + 1 s of TCP timer slack. The control run, without the socket options,
shows that the write deadline alone does not find it (a ping never blocks a write).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Final

import pytest
from aiohttp import web

from sseserver import serving
from sseserver.access_log import AccessLogger
from sseserver.app import create_app
from sseserver.app_keys import METRICS
from sseserver.config import Settings

from .support.fake_anthropic import FakeAnthropic, Silent
from .support.metrics_text import parse, value
from .support.system_tools import IP, TC, require, require_root

NAMESPACE: Final = f"sseserver-t{os.getpid()}"
HOST_END: Final = "sseA"
CLIENT_END: Final = "sseB"
HOST_IP: Final = "10.231.7.1"
CLIENT_IP: Final = "10.231.7.2"

HEARTBEAT: Final = 1.0
SEND_TIMEOUT: Final = 2.0
BOUND: Final = HEARTBEAT + SEND_TIMEOUT + 0 + 1.0  # resume window 0

CLIENT: Final = """
import socket, sys, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
sock.sendall(b"GET /api/sse?message=hi HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
seen = b""
while b"event: message" not in seen:
    seen += sock.recv(65536)
print("ready", flush=True)
time.sleep(600)  # holds the socket open, and never closes it
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    require(IP, TC)
    require_root("a network namespace")
    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, timeout=10)
    subprocess.run(["ip", "link", "del", HOST_END], capture_output=True, timeout=10)
    _ip("netns", "add", NAMESPACE)
    try:
        _ip("link", "add", HOST_END, "type", "veth", "peer", "name", CLIENT_END)
        _ip("link", "set", CLIENT_END, "netns", NAMESPACE)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_END)
        _ip("link", "set", HOST_END, "up")
        _ip("-n", NAMESPACE, "addr", "add", f"{CLIENT_IP}/30", "dev", CLIENT_END)
        _ip("-n", NAMESPACE, "link", "set", CLIENT_END, "up")
        _ip("-n", NAMESPACE, "link", "set", "lo", "up")
        yield NAMESPACE
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", HOST_END], capture_output=True, timeout=10)


def _cut_the_link() -> None:
    """Drop every packet both ways: a queue that holds nothing drops all it is given."""
    subprocess.run(["tc", "qdisc", "add", "dev", HOST_END, "root", "pfifo", "limit", "0"],
                   check=True, timeout=10)
    subprocess.run(["ip", "netns", "exec", NAMESPACE, "tc", "qdisc", "add", "dev", CLIENT_END,
                    "root", "pfifo", "limit", "0"], check=True, timeout=10)


@pytest.fixture
async def app_on_the_link(
    namespace: str, fake_anthropic: FakeAnthropic
) -> AsyncIterator[tuple[web.Application, int]]:
    settings = dataclasses.replace(
        Settings(), provider="anthropic", anthropic_api_key=fake_anthropic.api_key,
        anthropic_base_url=fake_anthropic.base_url, upstream_retries=0,
        heartbeat=HEARTBEAT, send_timeout=SEND_TIMEOUT, resume_window=0, shutdown_grace=0,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handler_cancellation=True, access_log_class=AccessLogger,
                           shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST_IP, 0)
        await site.start()
        yield app, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _vanish(port: int) -> tuple[asyncio.subprocess.Process, float]:
    """Start the client in the namespace, wait for its first token, cut the link."""
    client = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", NAMESPACE, sys.executable, "-c", CLIENT, HOST_IP, str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    async with asyncio.timeout(10):
        assert (await client.stdout.readline()).strip() == b"ready"
    _cut_the_link()
    return client, time.monotonic()


async def test_vanished_client_is_found_and_its_upstream_cancelled_within_the_bound(
    app_on_the_link: tuple[web.Application, int], fake_anthropic: FakeAnthropic
) -> None:
    app, port = app_on_the_link
    fake_anthropic.enqueue(Silent(chunks=["thinking..."]))
    client, cut = await _vanish(port)
    try:
        closed_at = await fake_anthropic.wait_closed(0, timeout=BOUND + 5)
        assert client.returncode is None  # it never closed its socket: no FIN, no RST
    finally:
        client.kill()
        await client.wait()
    took = closed_at - cut
    print(f"half-open client found and upstream closed {took:.2f}s after the link was cut "
          f"(bound {BOUND:.1f}s = heartbeat {HEARTBEAT:g} + send timeout {SEND_TIMEOUT:g}"
          " + resume window 0 + 1 s slack)")
    assert took < BOUND
    samples = parse(app[METRICS].render()[0].decode())
    assert value(samples, "sseserver_subscribers_active") == 0
    assert value(samples, "sseserver_disconnects_total", reason="client_gone") == 1


async def test_control_without_the_socket_options_the_client_is_not_found(
    app_on_the_link: tuple[web.Application, int], fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why sockets.py exists: with only the write deadline, a vanished client is still
    attached well past the bound (Linux would retransmit for about 15 minutes)."""
    monkeypatch.setattr(serving, "watch_for_half_open", lambda request, timeout: None)
    app, port = app_on_the_link
    fake_anthropic.enqueue(Silent(chunks=["thinking..."]))
    client, _ = await _vanish(port)
    try:
        await asyncio.sleep(BOUND + 1)
        assert fake_anthropic.requests[0].closed_at is None
        assert app[METRICS].live.subscribers == 1
    finally:
        client.kill()
        await client.wait()
