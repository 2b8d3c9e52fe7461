"""Headless Chromium for the page's tests: Debian's `/usr/bin/chromium` driven by playwright
(its own browser download is never used), a page that fails its test on any script error,
CSP violation or dialog, the `browser` and `page` fixtures (registered in conftest.py), and
what the tests do with the chat page.

Each test launches its own browser: a shared one would have to live in a longer-lived
event loop than the function-scoped server fixtures it talks to.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    Request,
    ViewportSize,
    async_playwright,
    expect,
)

from .system_tools import CHROMIUM, require

# Needed on this machine (containers without a user namespace or GPU); harmless elsewhere.
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "artifacts"
DESKTOP: Final = ViewportSize(width=1100, height=800)
PHONE: Final = ViewportSize(width=360, height=740)
TIMEOUT_MS: Final = 10_000


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, through playwright (tests/test_page_*.py use it too)."""
    require(CHROMIUM)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM.path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def checked_page(
    browser: Browser, viewport: ViewportSize = DESKTOP, **options: Any
) -> AsyncIterator[Page]:
    """A page in a new context that fails the test on any script error, CSP violation
    or dialog (alert, confirm, prompt: only injected script would open one)."""
    context = await browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(f"console: {message.text}")

    async def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.type} {dialog.message!r}")
        await dialog.dismiss()

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        await context.close()
    assert problems == [], problems


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop-sized page that fails the test on any script error or CSP violation."""
    async with checked_page(browser) as checked:
        yield checked



async def ask(page: Page, question: str) -> None:
    """Type `question` in the composer and press Enter (lines joined with Shift+Enter)."""
    prompt = page.locator("#prompt")
    await prompt.click()
    for number, line in enumerate(question.split("\n")):
        if number:
            await page.keyboard.press("Shift+Enter")
        await page.keyboard.insert_text(line)
    await prompt.press("Enter")


def last_reply(page: Page) -> Locator:
    return page.locator("#transcript .reply").last


async def reply_text(reply: Locator) -> str:
    """The reply's text as shown: the textContent of its rendered Markdown, without the
    line breaks between blocks at either end (no other whitespace normalisation)."""
    text = await reply.locator(".parts").evaluate(
        "el => [...el.querySelectorAll('.text-part')].map(p => p.textContent).join('')"
    )
    return str(text).strip("\n")


async def wait_status(reply: Locator, status: str) -> None:
    await expect(reply).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)


async def wait_partial_text(page: Page, full: str) -> str:
    """Wait until the last reply shows some, but not all, of `full`; return that text."""
    handle = await page.wait_for_function(
        """full => {
            const reply = [...document.querySelectorAll('#transcript .reply')].pop();
            const shown = reply?.querySelector('.text-part')?.textContent ?? '';
            const text = shown.replace(/^\\n+|\\n+$/g, '');
            return text.length > 0 && text.length < full.trim().length ? text : null;
        }""",
        arg=full,
        timeout=TIMEOUT_MS,
    )
    text = await handle.json_value()
    assert isinstance(text, str)
    return text


def numbered_chunks(count: int) -> list[str]:
    """Distinct chunks, so a lost, repeated or reordered one changes the text."""
    return [f"w{n:03d} " for n in range(count)]


async def assert_no_horizontal_scroll(page: Page) -> None:
    """Neither the page nor the transcript (its own scroll box) scrolls sideways."""
    widths = await page.evaluate(
        """() => {
            const t = document.querySelector('#transcript');
            return [document.documentElement.scrollWidth, t.scrollWidth, t.clientWidth];
        }"""
    )
    page_width, transcript_scroll, transcript_client = widths
    assert page_width <= PHONE["width"], f"page scrolls sideways: {page_width}px"
    assert transcript_scroll <= transcript_client, f"transcript scrolls sideways: {widths}"


async def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


# ---- tests ----


def post_bodies(page: Page) -> list[dict[str, Any]]:
    """The JSON bodies of the page's POST /api/streams, as they are sent."""
    bodies: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/streams"):
            body = request.post_data_json
            assert isinstance(body, dict)
            bodies.append(body)

    page.on("request", record)
    return bodies


async def panel_state(panel: Locator) -> dict[str, Any]:
    """What a tool or code panel shows: its summary, whether it is open, its state, and its
    sections' headings and texts (each child's text joined by "|")."""
    state = await panel.evaluate("""el => ({
        summary: el.querySelector('summary').textContent,
        open: el.open,
        state: el.dataset.state,
        sections: [...el.querySelectorAll('.tool-io')].map(s => [
            s.querySelector('.tool-io-label').textContent,
            [...s.children].slice(1).map(c => c.textContent).join('|'),
        ]),
    })""")
    assert isinstance(state, dict)
    return state
