"""Ways to run several processes: `--workers N` on one port with SO_REUSEPORT,
and gunicorn's aiohttp worker with our worker class, each with the commands the README
gives."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import aiohttp

from .support.fake_anthropic import FakeAnthropic, Reply, Silent
from .support.processes import Processes, gunicorn_url, server_env, wait_healthy
from .support.redis_server import RedisServer
from .support.sse_client import open_sse
from .support.waiting import until


def _workers(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _access_pids(log: str) -> set[int]:
    """The pids in the access-log lines of a `--workers` server's log."""
    return {int(pid) for pid in re.findall(r" INFO \[(\d+)\] aiohttp\.access: ", log)}


def _alive(pids: list[int]) -> bool:
    return any(Path(f"/proc/{pid}").exists() for pid in pids)


def _redis_clients(redis_server: RedisServer) -> set[str]:
    """The process tokens of the sseserver processes connected to Redis (each names its
    connections `sseserver-<token>`, `…-reader`, `…-lease`)."""
    reply = redis_server.command(b"CLIENT", b"LIST") or b""
    return {part.split(b"=", 1)[1].decode().split("-")[1] for part in reply.split()
            if part.startswith(b"name=sseserver-")}


async def test_workers_without_redis_refuse_to_start(processes: Processes) -> None:
    code, _, stderr = await processes.command("--workers", "2")
    assert code == 2
    assert "--workers 2 needs --redis-url" in stderr


async def test_workers_share_one_port_and_every_stream(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_server: RedisServer,
    redis_url: str,
) -> None:
    server = await processes.sseserver(
        fake_anthropic, "--workers", "2", "--redis-url", redis_url, timeout=60
    )
    workers = _workers(server.process.pid)
    assert len(workers) == 2
    assert len(_redis_clients(redis_server)) == 2  # two workers, each with its store
    # Every connection is a new one (open_sse forces a close), so the kernel spreads them;
    # whichever worker each lands on, the stream resumes exactly.
    words = [f"word{i} " for i in range(30)]
    fake_anthropic.enqueue(Reply(chunks=words, delay=0.02))
    text = ""
    headers: dict[str, str] = {}
    while True:
        async with await open_sse(server.url + "/api/sse?message=hi", headers=headers) as s:
            if s.status == 204:
                break
            await s.take(3)
            text += s.text
            headers = {"Last-Event-ID": s.last_id}
            if s.types()[-1] == "done":
                break
    assert text == "".join(words)
    assert len(fake_anthropic.requests) == 1
    # Both workers took connections: the kernel spreads new connections by their
    # addresses' hash, so 20 more make one worker taking them all a one-in-a-million
    # chance. Each access-log line names its worker's pid.
    for _ in range(20):
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)
        ) as session, session.get(server.url + "/healthz") as response:
            assert response.status == 200
    served = await until(lambda: _access_pids(server.log) == set(workers),
                         what=f"access lines from both workers {workers}")
    print(f"both workers served connections (seen after {served:.2f} s)")
    started = time.monotonic()
    assert await server.stop() == 0
    assert time.monotonic() - started < 10
    assert not _alive(workers)


async def test_gunicorn_with_sseworker_cancels_on_disconnect(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str, tmp_path: Path
) -> None:
    """The README's gunicorn command. A client leaving while the upstream is silent is
    noticed at once (handler cancellation): with --resume-window 0 the upstream closes."""
    env = server_env(fake_anthropic, SSESERVER_REDIS_URL=redis_url, SSESERVER_RESUME_WINDOW="0",
                     SSESERVER_PROVIDER="anthropic", SSESERVER_UPSTREAM_RETRIES="0")
    server = await processes.spawn(
        [sys.executable, "-m", "gunicorn", "sseserver.app:app_from_environment()",
         "--worker-class", "sseserver.gunicorn_worker.SSEWorker", "--workers", "2",
         "--bind", "127.0.0.1:0", "--no-control-socket"],
        env,
    )
    url = await gunicorn_url(server)
    await wait_healthy(url, timeout=60)
    fake_anthropic.enqueue(Silent(chunks=["thinking", " about it"]))
    stream = await open_sse(url + "/api/sse?message=hi")
    await stream.take(3)  # meta and the two chunks; then the upstream says nothing
    await asyncio.sleep(0.2)
    left_at = time.monotonic()
    await stream.close()
    closed_at = await fake_anthropic.wait_closed(0, timeout=5)
    print(f"gunicorn: upstream closed {(closed_at - left_at) * 1000:.0f} ms after the client")
    assert closed_at - left_at < 0.5
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        assert (await response.json())["backend"] == "redis"
    assert await server.stop() == 0
