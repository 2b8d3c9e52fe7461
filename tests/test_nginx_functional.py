"""Behind a real reverse proxy: Debian's nginx runs deploy/nginx.conf (only its addresses
swapped) in front of two sseserver processes sharing one Redis: the shipped config must
pass frames through unbuffered and let a resume land on either process."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from .fake_anthropic import FakeAnthropic, Reply
from .processes import ROOT, Processes, ServerProcess
from .redis_server import free_port
from .sse_client import SSEStream, open_sse
from .system_tools import NGINX, require


@dataclass
class Nginx:
    url: str
    access_log: Path

    def upstreams(self) -> list[tuple[str, str, str]]:
        """(method, uri, upstream address) of each request, from our access log."""
        lines = self.access_log.read_text().splitlines()
        return [tuple(line.split(" ", 2)) for line in lines]  # type: ignore[misc]


def nginx_config(upstreams: list[int], port: int, workdir: Path) -> str:
    """The main config for deploy/nginx.conf: our own pid, logs and temp paths."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)
    site, count = re.subn(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, site)
    assert count == 1, "deploy/nginx.conf: the upstream servers were not found"
    site, count = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", site)
    assert count == 1, "deploy/nginx.conf: the listen line was not found"
    (workdir / "sseserver.conf").write_text(site)
    # As root, the workers need a user (nginx would pick one that may not exist here).
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {workdir}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n" + temp +
        "    log_format upstreams '$request_method $uri $upstream_addr';\n"
        f"    access_log {workdir}/access.log upstreams;\n"
        f"    include {workdir}/sseserver.conf;\n"
        "}\n"
    )


@pytest.fixture
def nginx_workdir() -> Iterator[Path]:
    require(NGINX)
    workdir = Path(tempfile.mkdtemp(prefix="sseserver-nginx-"))
    workdir.chmod(0o755)  # nginx's workers (nobody) reach their temp paths through it
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


def _start_nginx(workdir: Path, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [NGINX.path, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.fixture
async def two_behind_nginx(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str, nginx_workdir: Path
) -> AsyncIterator[tuple[Nginx, ServerProcess, ServerProcess]]:
    a, b = await asyncio.gather(*(
        processes.sseserver(fake_anthropic, "--redis-url", redis_url, "--resume-window", "5")
        for _ in range(2)
    ))
    port = free_port()
    config = nginx_workdir / "nginx.conf"
    config.write_text(nginx_config([a.port, b.port], port, nginx_workdir))
    process = _start_nginx(nginx_workdir, config)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.communicate()[1].decode()
                assert time.monotonic() < deadline, "nginx did not start"
                await asyncio.sleep(0.05)
        yield Nginx(f"http://127.0.0.1:{port}", nginx_workdir / "access.log"), a, b
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


async def _arrivals(stream: SSEStream) -> dict[str, float]:
    """When each event (by id) arrived, until the stream ends."""
    seen: dict[str, float] = {}
    while (event := await stream.next_event(timeout=10)) is not None:
        seen[event.last_event_id] = time.monotonic()
    return seen


async def test_frames_pass_through_nginx_unbuffered(
    two_behind_nginx: tuple[Nginx, ServerProcess, ServerProcess], fake_anthropic: FakeAnthropic
) -> None:
    nginx, a, _ = two_behind_nginx
    chunks = [f"w{i} " for i in range(40)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.05))
    async with aiohttp.ClientSession() as session, session.post(
        a.url + "/api/streams", json={"messages": [{"role": "user", "content": "hi"}]}
    ) as response:
        url = (await response.json())["url"]
    direct, proxied = await asyncio.gather(open_sse(a.url + url), open_sse(nginx.url + url))
    async with direct, proxied:
        assert proxied.status == 200
        assert proxied.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        at_direct, at_proxied = await asyncio.gather(_arrivals(direct), _arrivals(proxied))
    assert proxied.text == direct.text == "".join(chunks)
    assert bytes(proxied.raw) == bytes(direct.raw)
    # Only the events that were live for both (the first few may be a replay for one).
    lags = sorted((at_proxied[i] - at_direct[i]) * 1000 for i in list(at_direct)[5:])
    print(f"through nginx vs direct, per event: median {lags[len(lags) // 2]:.1f} ms, "
          f"max {lags[-1]:.1f} ms over {len(lags)} events")
    assert lags[-1] < 20


async def test_resume_through_nginx_lands_on_the_other_upstream(
    two_behind_nginx: tuple[Nginx, ServerProcess, ServerProcess], fake_anthropic: FakeAnthropic
) -> None:
    nginx, a, b = two_behind_nginx
    words = [f"word{i} " for i in range(40)]
    fake_anthropic.enqueue(Reply(chunks=words, delay=0.01))
    first = await open_sse(nginx.url + "/api/sse?message=hi")
    await first.take(5)
    await first.close()
    async with await open_sse(nginx.url + "/api/sse?message=hi",
                              headers={"Last-Event-ID": first.last_id}) as second:
        await second.read_all()
    assert first.text + second.text == "".join(words)
    assert len(fake_anthropic.requests) == 1
    for _ in range(100):  # nginx logs a request once it is over, a moment after us
        served = [upstream for _, _, upstream in nginx.upstreams()]
        if len(served) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(served) == 2
    assert set(served) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}  # one each
