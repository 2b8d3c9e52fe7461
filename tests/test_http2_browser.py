"""Why TLS and HTTP/2 at nginx (docs/operations.md, "Behind a proxy"): a browser gives
HTTP/1.1 six connections per origin, so a seventh EventSource waits until one of the six
ends; over HTTP/2 every stream shares one connection.

Headless Chromium (Debian's, driven by playwright) trusts the test's self-signed
certificate by its key's hash and opens ten EventSource streams at once through
deploy/nginx.conf to two sseserver processes; the protocol is the browser's own report
(Resource Timing's nextHopProtocol). The same page with HTTP/2 turned off in the browser
shows the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import async_playwright

from .support.browser import CHROMIUM_ARGS
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.nginx_server import Nginx, nginx_workdir, running_nginx
from .support.processes import Processes
from .support.system_tools import CHROMIUM, require

__all__ = ["nginx_workdir"]

pytestmark = pytest.mark.browser

STREAMS: Final = 10
WORDS: Final = [f"w{i} " for i in range(30)]
# Each reply lasts about 1.5 s: long enough that ten streams started together overlap.
REPLY: Final = Reply(chunks=WORDS, delay=0.05)

# Opens `count` EventSource streams at once; each records when its first message and its
# `done` came (then closes, so it never reconnects) and its text.
OPEN_STREAMS: Final = """
async (count) => {
    const streams = await Promise.all(Array.from({length: count}, (_, i) =>
        new Promise((resolve, reject) => {
            const stream = {first: null, done: null, text: ""};
            const source = new EventSource(`/api/sse?message=stream${i}`);
            source.onmessage = (event) => {
                stream.first ??= performance.now();
                stream.text += JSON.parse(event.data);
            };
            source.addEventListener("done", () => {
                stream.done = performance.now();
                source.close();
                resolve(stream);
            });
            source.onerror = () => {
                source.close();
                reject(new Error(`stream ${i} failed`));
            };
        })));
    // Resource Timing entries are made once each response is over (waited for 5 s at most).
    const entries = () => performance.getEntriesByType("resource")
        .filter((entry) => entry.name.includes("/api/sse"));
    for (let waited = 0; entries().length < count && waited < 5000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return {streams, protocols: entries().map((entry) => entry.nextHopProtocol)};
}
"""


@pytest.fixture
async def nginx(
    processes: Processes, fake_anthropic: FakeAnthropic, redis_url: str, nginx_workdir: Path
) -> AsyncIterator[Nginx]:
    require(CHROMIUM)
    fake_anthropic.default_reply = REPLY
    a, b = await asyncio.gather(*(
        processes.sseserver(fake_anthropic, "--redis-url", redis_url) for _ in range(2)
    ))
    async with running_nginx(nginx_workdir, [a.port, b.port]) as nginx:
        yield nginx


def at_once(streams: list[dict[str, Any]]) -> int:
    """The most streams that were streaming at the same moment: between their first
    message and their `done`."""
    return max(
        sum(1 for other in streams if other["first"] <= stream["first"] < other["done"])
        for stream in streams
    )


async def open_ten(nginx: Nginx, *browser_args: str) -> tuple[int, list[str]]:
    """Streams at once and the protocol of each, from a browser with `browser_args`."""
    trust = f"--ignore-certificate-errors-spki-list={nginx.certificate.spki_sha256}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM.path, headless=True,
            args=[*CHROMIUM_ARGS, trust, *browser_args],
        )
        try:
            page = await browser.new_page()
            await page.goto(nginx.url + "/healthz")
            result = await page.evaluate(OPEN_STREAMS, STREAMS)
        finally:
            await browser.close()
    streams = result["streams"]
    assert [stream["text"] for stream in streams] == ["".join(WORDS)] * STREAMS
    return at_once(streams), result["protocols"]


async def test_ten_event_sources_stream_at_once_over_http2_and_six_over_http11(
    nginx: Nginx, fake_anthropic: FakeAnthropic
) -> None:
    h2_at_once, h2_protocols = await open_ten(nginx)
    h1_at_once, h1_protocols = await open_ten(nginx, "--disable-http2")
    print(f"EventSource streams at once, one origin through nginx: HTTP/2 {h2_at_once}, "
          f"HTTP/1.1 {h1_at_once} (of {STREAMS})")
    assert h2_protocols == ["h2"] * STREAMS
    assert h1_protocols == ["http/1.1"] * STREAMS
    assert h2_at_once == STREAMS
    assert h1_at_once == 6
    # One generation per stream: nothing was retried or reconnected.
    assert len(fake_anthropic.requests) == 2 * STREAMS
    served = [r for r in await nginx.wait_logged(2 * STREAMS + 2) if r.uri == "/api/sse"]
    assert sorted({r.protocol for r in served}) == ["HTTP/1.1", "HTTP/2.0"]
    assert all(r.status == 200 and len(r.upstreams) == 1 for r in served)
