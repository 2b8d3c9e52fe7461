"""Behind a real proxy (docs/operations.md, "Behind a proxy"): Debian's nginx with
deploy/nginx.conf (tests/support/nginx_server.py) over HTTPS in front of real sseserver processes.

- With --forwarded-allow-ips naming nginx, each client behind it has its own address: the
  per-client limit, the access log and the cookie's Secure flag use it.
- Without the option, every client behind nginx is nginx (the per-client limit is one
  limit for all of them), and a client that sends forwarded headers straight to sseserver
  gains nothing either way.
- A process killed mid-stream: nginx sends new streams to the other one, and subscribers of
  the dead one resume there with Last-Event-ID, from Redis, without a second generation.

Clients come from distinct loopback addresses (127.0.0.2, 127.0.0.3): any 127.x.y.z is
this host's, so nginx sees two different clients.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from sseserver.auth import COOKIE_NAME

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.metrics_text import parse, value
from .support.nginx_server import Nginx, nginx_workdir, running_nginx
from .support.processes import Processes, ServerProcess
from .support.sse_client import SSEStream, open_sse

__all__ = ["nginx_workdir"]

BODY: Final = {"messages": [{"role": "user", "content": "hi"}]}
TOKEN: Final = "proxy-test-token-0123456789"
AUTH: Final = {"Authorization": f"Bearer {TOKEN}"}
TRUST_LOCAL_NGINX: Final = ("--forwarded-allow-ips", "127.0.0.1")


@asynccontextmanager
async def client(local: str, nginx: Nginx | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """A client on its own address; trusting the test's certificate when given nginx."""
    ssl = nginx.certificate.client_context() if nginx is not None else True
    connector = aiohttp.TCPConnector(local_addr=(local, 0), ssl=ssl)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def post(session: aiohttp.ClientSession, url: str,
               headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with session.post(url + "/api/streams", json=BODY, headers=headers) as response:
        body = await response.json()
        if response.status == 429:
            assert response.headers["Retry-After"] == "5"
        return response.status, body


def access_line(address: str, status: int) -> str:
    """A pattern for the access log's line of a POST /api/streams from `address`."""
    return rf"{re.escape(address)} \"POST /api/streams\" {status} "


def refusal(body: Mapping[str, Any]) -> str:
    return str(body["error"]["type"])


async def one_behind_nginx(processes: Processes, fake: FakeAnthropic, workdir: Path,
                           *args: str) -> AsyncIterator[tuple[Nginx, ServerProcess]]:
    server = await processes.sseserver(fake, *args)
    async with running_nginx(workdir, [server.port]) as nginx:
        yield nginx, server


@pytest.fixture
async def trusting(
    processes: Processes, fake_anthropic: FakeAnthropic, nginx_workdir: Path
) -> AsyncIterator[tuple[Nginx, ServerProcess]]:
    """One process trusting the nginx in front of it (the limit is per process)."""
    async for pair in one_behind_nginx(
        processes, fake_anthropic, nginx_workdir, *TRUST_LOCAL_NGINX,
        "--max-streams-per-client", "2", "--access-token", TOKEN,
    ):
        yield pair


@pytest.fixture
async def not_trusting(
    processes: Processes, fake_anthropic: FakeAnthropic, nginx_workdir: Path
) -> AsyncIterator[tuple[Nginx, ServerProcess]]:
    async for pair in one_behind_nginx(
        processes, fake_anthropic, nginx_workdir,
        "--max-streams-per-client", "2", "--access-token", TOKEN,
    ):
        yield pair


async def test_two_clients_behind_nginx_each_get_their_streams_then_429(
    trusting: tuple[Nginx, ServerProcess], fake_anthropic: FakeAnthropic
) -> None:
    nginx, server = trusting
    async with client("127.0.0.2", nginx) as first, client("127.0.0.3", nginx) as second:
        for session in (first, second):
            for _ in range(2):
                status, body = await post(session, nginx.url, AUTH)
                assert status == 201, body
            status, body = await post(session, nginx.url, AUTH)
            assert (status, refusal(body)) == (429, "rate_limit_error")
        # A client's own X-Forwarded-For is replaced by nginx: it names nobody else.
        status, body = await post(first, nginx.url, AUTH | {"X-Forwarded-For": "198.51.100.7"})
        assert (status, refusal(body)) == (429, "rate_limit_error")
    # Nor does it straight to the process, which trusts only nginx's address.
    async with client("127.0.0.3") as direct:
        status, body = await post(direct, server.url, AUTH | {"X-Forwarded-For": "198.51.100.8"})
        assert (status, refusal(body)) == (429, "rate_limit_error")
    async with client("127.0.0.2", nginx) as first, client("127.0.0.3", nginx) as second:
        async with second.get(nginx.url + "/api/sse?message=hi", headers=AUTH) as response:
            assert response.status == 429
            assert refusal(await response.json()) == "rate_limit_error"
        async with first.get(nginx.url + "/metrics", headers=AUTH) as response:
            metrics = await response.text()
    # Nothing reached the upstream: a POSTed stream waits for its first reader, and the
    # refusals started nothing.
    assert fake_anthropic.requests == []
    assert value(parse(metrics), "sseserver_refused_total", reason="client_limit") == 5
    assert "127.0.0." not in metrics  # no label holds an address
    log = server.log
    assert "X-Forwarded-For/-Proto when the peer is in 127.0.0.1/32" in log
    for address, refused in (("127.0.0.2", 2), ("127.0.0.3", 2)):
        assert len(re.findall(access_line(address, 201), log)) == 2, log
        assert len(re.findall(access_line(address, 429), log)) == refused, log
    assert not re.search(access_line("127.0.0.1", 201), log), log


async def test_without_the_option_everyone_behind_nginx_is_one_client(
    not_trusting: tuple[Nginx, ServerProcess], fake_anthropic: FakeAnthropic
) -> None:
    """The default: the client is the TCP peer, here nginx for everybody."""
    nginx, server = not_trusting
    async with client("127.0.0.2", nginx) as first, client("127.0.0.3", nginx) as second:
        for _ in range(2):
            status, body = await post(first, nginx.url, AUTH)
            assert status == 201, body
        status, body = await post(second, nginx.url, AUTH)
        assert (status, refusal(body)) == (429, "rate_limit_error")
        async with second.get(nginx.url + f"/?token={TOKEN}", allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "Secure" not in cookie  # the process never learns that the browser used HTTPS
    assert fake_anthropic.requests == []  # POSTed streams wait for their first reader
    assert re.search(access_line("127.0.0.1", 429), server.log)


async def test_the_cookie_set_through_nginx_is_secure(
    trusting: tuple[Nginx, ServerProcess],
) -> None:
    nginx, server = trusting
    async with client("127.0.0.2", nginx) as session:
        async with session.get(nginx.url + f"/?token={TOKEN}",
                               allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
            through_nginx = response.headers["Set-Cookie"]
        # Plain HTTP at nginx only redirects to HTTPS: the token is never served over it.
        async with session.get(nginx.http_url + "/healthz", allow_redirects=False) as response:
            assert response.status == 308
            assert response.headers["Location"] == "https://127.0.0.1/healthz"
    async with client("127.0.0.2") as session, session.get(
        server.url + f"/?token={TOKEN}", allow_redirects=False,
        headers={"X-Forwarded-Proto": "https"},
    ) as response:
        assert response.status == 303
        direct = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in through_nginx.split(";")}
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= attributes
    # Straight to the process over plain HTTP, the client's own header counts for nothing.
    assert "secure" not in direct.lower()
    assert direct.split(";")[0] == through_nginx.split(";")[0]


async def test_forwarded_headers_sent_straight_to_sseserver_gain_nothing(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that is not a trusted proxy cannot name itself: with 127.0.0.1 trusted, a
    client on 127.0.0.2 that sends a new X-Forwarded-For each time is still one client;
    the trusted peer's header does count."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = await start_server(
        fake=fake_anthropic, max_streams_per_client=2,
        forwarded_allow_ips=(ipaddress.ip_network("127.0.0.1"),),
    )
    async with client("127.0.0.2") as spoofer:
        results = [await post(spoofer, server.url, {"X-Forwarded-For": f"203.0.113.{i}"})
                   for i in range(3)]
    assert [status for status, _ in results] == [201, 201, 429]
    async with client("127.0.0.1") as proxy:
        results = [await post(proxy, server.url, {"X-Forwarded-For": f"203.0.113.{i}"})
                   for i in (7, 8)]
    assert [status for status, _ in results] == [201, 201]
    logged = [record.getMessage() for record in caplog.records if "/api/streams" in
              record.getMessage()]
    assert [line.split(" ")[0] for line in logged] == [
        "127.0.0.2", "127.0.0.2", "127.0.0.2", "203.0.113.7", "203.0.113.8"]
    assert fake_anthropic.requests == []  # POSTed streams wait for their first reader


# ---- a failing upstream ----

WORDS: Final = [f"word{i} " for i in range(60)]


async def follow(stream: SSEStream, timeout: float = 15) -> bool:
    """Read until the stream ends; True if it was cut (the process behind it died)."""
    try:
        async with asyncio.timeout(timeout):
            while await stream.next_event(timeout) is not None:
                if stream.events[-1].type == "done":
                    return False
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        return True
    return True


@pytest.fixture
async def two_behind_nginx(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str, nginx_workdir: Path
) -> AsyncIterator[tuple[Nginx, ServerProcess, ServerProcess]]:
    a, b = await asyncio.gather(*(
        processes.sseserver(fake_anthropic, "--redis-url", redis_url, "--resume-window", "5",
                            *TRUST_LOCAL_NGINX)
        for _ in range(2)
    ))
    async with running_nginx(nginx_workdir, [a.port, b.port]) as nginx:
        yield nginx, a, b


async def test_a_killed_upstream_new_streams_go_to_the_other_and_its_subscribers_resume(
    two_behind_nginx: tuple[Nginx, ServerProcess, ServerProcess],
    fake_anthropic: FakeAnthropic,
) -> None:
    nginx, a, b = two_behind_nginx
    at_a, at_b = f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"
    tls = nginx.certificate.client_context()
    fake_anthropic.default_reply = Reply(chunks=WORDS, delay=0.05)
    # Four generations owned by B (started there), watched through nginx: its round robin
    # puts some subscribers on A.
    async with aiohttp.ClientSession() as session:
        urls = []
        for _ in range(4):
            async with session.post(b.url + "/api/streams", json=BODY) as response:
                urls.append((await response.json())["url"])
    streams = [await open_sse(nginx.url + url, ssl=tls) for url in urls]
    served_by = [stream.headers["X-Upstream"] for stream in streams]
    assert sorted(set(served_by)) == sorted({at_a, at_b}), served_by
    for stream in streams:
        await stream.take(5)

    a.kill()
    new = [await open_sse(nginx.url + "/api/sse?message=hi", ssl=tls) for _ in range(4)]
    cut = await asyncio.gather(*(follow(stream) for stream in streams))
    assert cut == [upstream == at_a for upstream in served_by]
    for stream in new:
        assert stream.status == 200
        assert stream.headers["X-Upstream"].endswith(at_b)
    resumed: list[SSEStream] = []
    for stream, url, was_cut in zip(streams, urls, cut, strict=True):
        text = stream.text
        await stream.close()
        if was_cut:
            again = await open_sse(nginx.url + url, ssl=tls,
                                   headers={"Last-Event-ID": stream.last_id})
            assert again.status == 200
            assert again.headers["X-Upstream"].endswith(at_b)
            assert not await follow(again)
            text += again.text
            resumed.append(again)
        assert text == "".join(WORDS)
    for stream in new:
        assert not await follow(stream)
        assert stream.text == "".join(WORDS)
        await stream.close()
    for stream in resumed:
        await stream.close()
    assert len(fake_anthropic.requests) == 4 + len(new)  # no second generation
    logged = await nginx.wait_logged(len(streams) + len(new) + len(resumed))
    assert all(r.status == 200 for r in logged), logged
    tried = sorted(r.upstreams for r in logged)
    # Only the subscribers A served before it died were served by A. Passive health: the
    # first request that found A down was passed to B and took A out of rotation, so at
    # most one request tried it after.
    assert tried.count((at_a,)) == served_by.count(at_a), tried
    assert tried.count((at_a, at_b)) <= 1, tried
    assert len(tried) - tried.count((at_a,)) - tried.count((at_a, at_b)) == tried.count(
        (at_b,)), tried
