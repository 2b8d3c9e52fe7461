"""A useChat page in Debian's Chromium, against the real app (docs/protocol.md, "The AI
SDK's chat route"): tests/node/chat_page.jsx, built here with esbuild from the pinned
packages, is served by the test on its own origin and calls sseserver across origins
(--cors-origins), as a Next.js front end on another host would. It chats, is reloaded in
the middle of a reply (and of a client tool's input), and resumes it: the reply ends
exactly as the fake sent it, once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect

from sseserver.tools.definitions import tool_specs

from .conftest import StartServer
from .support.aisdk_node import NODE_DIR, require_ai_sdk
from .support.browser import CHROMIUM_ARGS, TIMEOUT_MS
from .support.fake_anthropic import FakeAnthropic, Reply, Text, ToolUse
from .support.system_tools import CHROMIUM, require

pytestmark = pytest.mark.browser

CHUNKS: Final = ["Resumed ", "\"exactly\"", " — ", "once. "] + [f"w{i} " for i in range(40)]
FULL: Final = "".join(CHUNKS)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page, built once for this module with esbuild (a test fixture, not the product)."""
    node = require_ai_sdk()
    out = tmp_path_factory.mktemp("aisdk-page")
    subprocess.run([node, str(NODE_DIR / "build_page.mjs"), str(out)], cwd=NODE_DIR,
                   check=True, timeout=60)
    return out


@pytest.fixture
async def page_origin(bundle: Path) -> AsyncIterator[str]:
    """The page on its own origin, served by the test."""
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(bundle / "index.html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/", bundle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    require(CHROMIUM)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM.path, headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            await browser.close()
        assert errors == []


async def _assistant_text(page: Page) -> str:
    return str(await page.locator('#messages li[data-role="assistant"]').last.evaluate(
        "el => el.textContent"))


async def _ask(page: Page, url: str, prompt: str, *, shown: int) -> None:
    """Open the page at `url`, send `prompt`, and wait until the reply shows more than
    `shown` characters."""
    await page.goto(url)
    await page.fill("#prompt", prompt)
    await page.click("#send")
    await page.wait_for_function(
        "() => (document.querySelector('#messages li[data-role=assistant]')"
        f"?.textContent.length ?? 0) > {shown}")

async def test_a_reload_in_the_middle_of_a_reply_resumes_it_exactly(
    start_server: StartServer, fake_anthropic: FakeAnthropic, page_origin: str, page: Page,
    backend: dict[str, object],
) -> None:
    server = await start_server(fake=fake_anthropic, cors_origins=(page_origin,), **backend)
    fake_anthropic.enqueue(Reply(chunks=CHUNKS, delay=0.04))
    await _ask(page, f"{page_origin}/?server={server.url}", "Tell me", shown=20)
    before = await _assistant_text(page)
    message_id = await page.locator('#messages li[data-role="assistant"]').get_attribute(
        "data-id")
    await page.reload()
    # The page comes back with what it had kept, then useChat's resume replays the reply.
    await expect(page.locator("#status")).to_have_text("ready", timeout=TIMEOUT_MS)
    await page.wait_for_function(
        f"() => document.querySelector('#messages li[data-role=assistant]')?.textContent"
        f".length === {len(FULL)}")
    assert 20 < len(before) < len(FULL)
    items = page.locator("#messages li")
    assert await items.count() == 2
    assert await items.nth(0).get_attribute("data-role") == "user"
    assistant = items.nth(1)
    assert await _assistant_text(page) == FULL
    assert await assistant.get_attribute("data-id") == message_id  # replaced, not added
    assert await assistant.get_attribute("data-parts") == "step-start text"
    assert len(fake_anthropic.requests) == 1
    # A second reload: the reply is over and delivered, so nothing is resumed or repeated.
    await page.reload()
    await expect(page.locator("#status")).to_have_text("ready")
    await asyncio.sleep(0.2)
    assert await items.count() == 2
    assert await _assistant_text(page) == FULL
    assert len(fake_anthropic.requests) == 1


async def test_stop_in_the_page_cancels_the_upstream(
    start_server: StartServer, fake_anthropic: FakeAnthropic, page_origin: str, page: Page,
) -> None:
    server = await start_server(fake=fake_anthropic, cors_origins=(page_origin,))
    fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    await _ask(page, f"{page_origin}/?server={server.url}", "Go on", shown=8)
    await page.click("#stop")
    await fake_anthropic.wait_closed(0, timeout=2)
    await expect(page.locator("#status")).to_have_text("ready")
    partial = await _assistant_text(page)
    assert 8 < len(partial) < 500 * 4
    await page.reload()
    await expect(page.locator("#status")).to_have_text("ready")
    await asyncio.sleep(0.2)
    assert await _assistant_text(page) == partial  # a stopped reply is not brought back


async def test_a_reload_in_the_middle_of_a_tool_input_rebuilds_the_call_once(
    start_server: StartServer, fake_anthropic: FakeAnthropic, page_origin: str, page: Page,
    backend: dict[str, object],
) -> None:
    """The page is reloaded while a client tool's input streams: the replay rebuilds the
    tool part once, with its whole input; the page then answers the call (onToolCall,
    addToolOutput), useChat sends the output back by itself, and the answer follows in
    the same message (docs/protocol.md, "The AI SDK's chat route")."""
    tools = tool_specs([{"name": "locate", "input_schema": {
        "type": "object", "properties": {"q": {"type": "string"}}}}])
    server = await start_server(fake=fake_anthropic, cors_origins=(page_origin,), tools=tools,
                                **backend)
    tool_input = {"q": "where " * 40}
    fake_anthropic.enqueue(
        Reply(blocks=(Text(["Asking your browser. "]),
                      ToolUse("toolu_c1", "locate", tool_input, pieces=40)),
              stop_reason="tool_use", delay=0.04),
        Reply(chunks=["You read ", "this page in your language."]))
    await page.goto(f"{page_origin}/?server={server.url}")
    await page.fill("#prompt", "Where am I?")
    await page.click("#send")
    tool = page.locator('#messages li[data-role="assistant"] pre.tool')
    await expect(tool).to_have_attribute("data-state", "input-streaming")
    message_id = await page.locator('#messages li[data-role="assistant"]').get_attribute(
        "data-id")
    await page.reload()
    assistant = page.locator('#messages li[data-role="assistant"]')
    await expect(assistant.locator(".text")).to_have_text(
        "Asking your browser. You read this page in your language.")
    await expect(page.locator("#status")).to_have_text("ready")
    assert await assistant.count() == 1
    assert await assistant.get_attribute("data-id") == message_id  # rebuilt in place
    assert await assistant.get_attribute("data-parts") == (
        "step-start text tool-locate step-start text")
    assert await tool.count() == 1
    assert await tool.get_attribute("data-state") == "output-available"
    assert json.loads(await tool.text_content() or "") == tool_input
    language = await page.evaluate("navigator.language")
    assert len(fake_anthropic.requests) == 2  # the call once, its answer once
    assert fake_anthropic.requests[1].body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Asking your browser. "},
            {"type": "tool_use", "id": "toolu_c1", "name": "locate", "input": tool_input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_c1",
                                      "content": json.dumps({"locale": language})}]},
    ]
