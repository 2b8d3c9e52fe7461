"""The conversation survives a reload of the chat page (real Chromium, real server).

The page keeps the history and the reply in flight (its stream id and last event id) in
the tab's sessionStorage. A reload mid-reply resumes the same generation from that id;
a reload after the server let the stream go shows the partial reply as interrupted,
with a Retry that asks again.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, Request, expect

from .conftest import StartServer
from .support.browser import (
    ask,
    last_reply,
    reply_text,
    wait_partial_text,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, Reply

pytestmark = pytest.mark.browser


def markdown_chunks(count: int) -> list[str]:
    """A reply with paragraphs and a list, each chunk distinct: a chunk lost, repeated or
    reordered across the reload changes the text."""
    chunks = []
    for n in range(count):
        if n % 20 == 0:
            chunks.append(f"\n\nPart {n // 20}:\n\n- item {n:03d}")
        elif n % 5 == 0:
            chunks.append(f"\n- item {n:03d}")
        else:
            chunks.append(f" w{n:03d}")
    return chunks


def list_items(text: str) -> list[str]:
    """The list items of a markdown_chunks() text, as the page shows them."""
    return [line.removeprefix("- ") for line in text.split("\n") if line.startswith("- ")]


async def test_reload_mid_reply_resumes_the_same_generation(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    first = ["The **first** ", "answer."]
    chunks = markdown_chunks(120)
    full = "".join(chunks)
    fake_anthropic.enqueue(Reply(chunks=first), Reply(chunks=chunks, delay=0.03))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "First question")
    await wait_status(last_reply(page), "done")
    await ask(page, "Count in Markdown")
    await wait_partial_text(page, full)
    # Well into the reply, so that the page has saved a last event id.
    await expect(last_reply(page).locator(".text-part li").nth(4)).to_be_visible()

    streams: list[str] = []

    def record(request: Request) -> None:
        if "/api/streams" in request.url:
            streams.append(f"{request.method} {request.url.removeprefix(server.url)}")

    page.on("request", record)
    await page.reload()

    # The history came back, then the same generation resumed where this page left it.
    await expect(page.locator("#transcript .user-turn .bubble")).to_have_text(
        ["First question", "Count in Markdown"]
    )
    first_reply = page.locator("#transcript .reply").first
    await expect(first_reply.locator(".text-part strong")).to_have_text("first")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert len(fake_anthropic.requests) == 1 + 1, "the reload started a second generation"
    [resumed] = streams
    assert resumed.startswith("GET /api/streams/"), streams
    assert "?lastEventId=" in resumed, streams
    await expect(page.locator("#stop")).to_be_disabled()

    # The text shown is a full render of the exact reply...
    lists = reply.locator(".text-part ul")
    await expect(lists).to_have_count(6)
    assert await reply.locator(".text-part li").all_text_contents() == list_items(full)
    # ...and the exact text goes back to Claude with the next question.
    fake_anthropic.enqueue(Reply(chunks=["Thanks."]))
    await ask(page, "Next")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[2].body["messages"] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "".join(first)},
        {"role": "user", "content": "Count in Markdown"},
        {"role": "assistant", "content": full},
        {"role": "user", "content": "Next"},
    ]


async def test_reload_after_expiry_shows_interrupted_with_a_working_retry(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = markdown_chunks(200)
    full = "".join(chunks)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.03))
    # A short resume window: once the page is gone, the generation is cancelled after
    # 0.5 s and its stream dropped 0.5 s later.
    server = await start_server(fake=fake_anthropic, resume_window=0.5)
    await page.goto(server.url)
    await ask(page, "A long answer")
    await wait_partial_text(page, full)
    await expect(last_reply(page).locator(".text-part li").nth(2)).to_be_visible()

    await page.goto("about:blank")
    await fake_anthropic.wait_closed(timeout=5.0)  # the server cancelled the generation
    await asyncio.sleep(1.5)  # and then let its stream go
    await page.goto(server.url)

    reply = last_reply(page)
    await wait_status(reply, "interrupted")
    await expect(reply.locator(".status")).to_have_text("Interrupted")
    # The partial reply, as far as the page had it: the items it showed, in order.
    items = await reply.locator(".text-part li").all_text_contents()
    expected = list_items(full)
    assert 3 <= len(items) < len(expected)
    assert items[:-1] == expected[: len(items) - 1]
    assert expected[len(items) - 1].startswith(items[-1])
    error = reply.locator(".error")
    await expect(error.locator(".error-type")).to_have_text("interrupted")
    await expect(reply.locator(".turn-note")).to_be_visible()  # left out of the history
    await expect(page.locator("#send")).to_be_enabled()

    fake_anthropic.enqueue(Reply(chunks=["Here ", "it ", "is."]))
    await error.locator(".retry").click()
    retried = last_reply(page)
    await wait_status(retried, "done")
    assert await reply_text(retried) == "Here it is."
    assert len(fake_anthropic.requests) == 2
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "A long answer"}
    ]


async def test_new_chat_forgets_the_conversation(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Kept ", "until ", "New chat."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Remember me")
    await wait_status(last_reply(page), "done")
    await page.reload()
    await expect(page.locator("#transcript .user-turn")).to_have_count(1)
    await expect(page.locator("#empty-state")).to_be_hidden()

    await page.locator("#new-chat").click()
    await page.reload()
    await expect(page.locator("#transcript .turn")).to_have_count(0)
    await expect(page.locator("#empty-state")).to_be_visible()
