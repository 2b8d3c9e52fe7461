"""The security headers over HTTP: the page's strict Content-Security-Policy (no inline
script anywhere, so an injected one never runs), and `X-Content-Type-Options: nosniff` on
every answer, errors and redirects included."""

from __future__ import annotations

import re
from typing import Final

import pytest

from sseserver.routes import PAGE_CSP

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.http_client import request

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"


async def test_the_page_has_a_strict_csp_and_no_inline_script(
    start_server: StartServer,
) -> None:
    server = await start_server()
    status, headers, body = await request("GET", server.url + "/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert csp == PAGE_CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    html = body.decode()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts, "the page loads its modules"
    assert all(not inline.strip() for inline in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no inline event handlers


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/", {}),
        ("GET", f"/?token={TOKEN}", {}),
        ("GET", "/static/app.js", {}),
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/metrics", {}),
        ("GET", "/api/sse?message=hi", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/api/sse", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/nope", {}),
        ("PUT", "/healthz", {}),
    ],
)
async def test_every_answer_has_nosniff(
    start_server: StartServer, fake_anthropic: FakeAnthropic, method: str, path: str,
    headers: dict[str, str],
) -> None:
    server = await start_server(fake=fake_anthropic, access_token=TOKEN)
    fake_anthropic.enqueue(Reply(chunks=["x"]))
    _, got, _ = await request(method, server.url + path, headers=headers)
    assert got["X-Content-Type-Options"] == "nosniff"
