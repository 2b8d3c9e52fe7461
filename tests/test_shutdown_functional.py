"""Graceful shutdown of `python -m sseserver` (docs/operations.md, "Graceful shutdown"): a
real process, real signals, the anthropic provider talking to the in-process fake, which
records when each upstream connection closed.

    SIGTERM ─▶ stop listening ─▶ generations get --shutdown-grace ─▶ the rest end with
    `error: server_shutdown` ─▶ upstreams closed ─▶ exit 0, no task left
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from .support.fake_anthropic import FakeAnthropic, Reply
from .support.processes import Processes
from .support.sse_client import open_sse


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_mid_stream_ends_it_with_server_shutdown_after_the_grace(
    processes: Processes, fake_anthropic: FakeAnthropic, signum: int
) -> None:
    grace = 1.0
    fake_anthropic.enqueue(Reply(chunks=[f"t{i} " for i in range(400)], delay=0.025))  # 10 s
    server = await processes.sseserver(fake_anthropic, "--shutdown-grace", str(grace))
    stream = await open_sse(server.url + "/api/sse?message=hi")
    async with stream:
        await stream.take(3)
        before = len(stream.events)
        server.signal(signum)
        signalled = time.monotonic()
        await stream.read_all(timeout=grace + 5)
    code = await server.wait(timeout=grace + 5)
    took = time.monotonic() - signalled
    last = stream.events[-1]
    print(f"{signal.Signals(signum).name}: {len(stream.events) - before} events streamed during "
          f"the grace, then {last.type} {last.data}; exit {code} after {took:.2f}s "
          f"(grace {grace}s)")
    assert last.type == "error"
    assert json.loads(last.data)["type"] == "server_shutdown"
    assert len(stream.events) - before > 10  # the generation went on during the grace
    assert code == 0, server.log
    assert grace <= took < grace + 1
    assert all(r.closed_at is not None for r in fake_anthropic.requests)
    assert "stopped cleanly: no task left running" in server.log


async def test_generations_that_end_within_the_grace_end_normally(
    processes: Processes, fake_anthropic: FakeAnthropic,
) -> None:
    """The grace is a deadline, not a wait: the process exits when the last one is done,
    and no new connection is accepted meanwhile."""
    chunks = [f"w{i} " for i in range(10)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.08))  # about 0.8 s
    server = await processes.sseserver(fake_anthropic, "--shutdown-grace", "10")
    host, port = server.url.removeprefix("http://").split(":")
    stream = await open_sse(server.url + "/api/sse?message=hi")
    async with stream:
        await stream.take(2)
        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(host, int(port))
        await stream.read_all()
    code = await server.wait(timeout=5)
    took = time.monotonic() - signalled
    print(f"reply finished during the grace; exit {code} {took:.2f}s after SIGTERM")
    assert stream.types()[-2:] == ["usage", "done"]
    assert stream.text == "".join(chunks)
    assert code == 0, server.log
    assert took < 2
    assert all(r.closed_at is not None for r in fake_anthropic.requests)
    assert "stopped cleanly: no task left running" in server.log


async def test_idle_server_exits_at_once(
    processes: Processes, fake_anthropic: FakeAnthropic
) -> None:
    server = await processes.sseserver(fake_anthropic, "--shutdown-grace", "30")
    server.signal(signal.SIGTERM)
    started = time.monotonic()
    code = await server.wait(timeout=5)
    assert code == 0, server.log
    assert time.monotonic() - started < 1.5


async def test_a_second_signal_exits_at_once(
    processes: Processes, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["x "] * 1000, delay=0.02))  # 20 s
    server = await processes.sseserver(fake_anthropic, "--shutdown-grace", "30")
    stream = await open_sse(server.url + "/api/sse?message=hi")
    async with stream:
        await stream.take(2)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert server.process.returncode is None  # in its 30 s grace
        server.signal(signal.SIGTERM)
        second = time.monotonic()
        code = await server.wait(timeout=5)
        took = time.monotonic() - second
    print(f"second SIGTERM: exit {code} after {took * 1000:.0f} ms")
    assert code == 128 + signal.SIGTERM
    assert took < 0.5
    assert "second signal, exiting now" in server.log
    # The kernel closed the upstream connection with the process: nothing more is billed.
    await fake_anthropic.wait_closed(0, timeout=2)
