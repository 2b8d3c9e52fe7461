"""The chat page (web/) in a real headless Chromium, against the real app.

Each test starts the app in-process (``start_server``) with the anthropic provider pointed
at the fake Anthropic API, so the page goes through the whole real path: POST /api/streams,
EventSource on the answered URL, the server's SSE frames, the SDK talking to the fake.
Chromium and the page's helpers are tests/support/browser.py's. Screenshots land in ``artifacts/``
(git-ignored).
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    Page,
    Request,
    expect,
)

from .conftest import RunningServer, StartServer
from .support.browser import (
    PHONE,
    TIMEOUT_MS,
    ask,
    assert_no_horizontal_scroll,
    last_reply,
    numbered_chunks,
    reply_text,
    save_screenshot,
    wait_partial_text,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, HttpError, Reply, Silent, count_output_tokens

pytestmark = pytest.mark.browser

async def test_reply_streams_into_the_page(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = numbered_chunks(12)
    full = "".join(chunks)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.08))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await expect(page.locator("#provider")).to_have_text("anthropic")
    await expect(page.locator("#demo-banner")).to_have_count(0)

    await ask(page, "Count for me")
    reply = last_reply(page)

    # Mid-reply: a proper prefix of the text is on the page, marked as streaming.
    partial = await wait_partial_text(page, full)
    assert full.startswith(partial)
    assert await reply.get_attribute("data-status") == "streaming"
    await expect(reply.locator(".status")).to_contain_text("Streaming")
    await expect(page.locator("#stop")).to_be_enabled()
    await expect(page.locator("#send")).to_be_disabled()

    await wait_status(reply, "done")
    assert await reply_text(reply) == full
    await expect(reply.locator(".status")).to_have_text("Done")
    await expect(reply.locator(".reply-model")).to_have_text(f"{server.settings.model} · anthropic")
    # After `usage`, the count is the server's output_tokens (the tooltip says so).
    tokens = count_output_tokens(chunks)
    metrics = reply.locator(".metrics")
    await expect(metrics).to_be_visible()
    await expect(metrics).to_have_text(
        re.compile(rf"^TTFT \d+ ms · \d+\.\d tok/s · {tokens} tokens · 12 input(?: · 0 cached)?$")
    )
    await expect(metrics).to_have_attribute("title", re.compile(r"usage\.output_tokens"))
    await expect(page.locator("#stop")).to_be_disabled()
    await expect(page.locator("#send")).to_be_enabled()
    await expect(page.locator("#prompt")).to_be_focused()


async def test_second_turn_carries_the_history(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    first_answer = ["Paris is ", "the capital\n", "of France."]
    fake_anthropic.enqueue(Reply(chunks=first_answer), Reply(chunks=["About 2.1 million."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)

    first_question = "Capital of France?\nOne line please."  # Shift+Enter made the line break
    await ask(page, first_question)
    await wait_status(last_reply(page), "done")
    await ask(page, "And its population?")
    await wait_status(last_reply(page), "done")

    assert len(fake_anthropic.requests) == 2
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": first_question},
        {"role": "assistant", "content": "".join(first_answer)},
        {"role": "user", "content": "And its population?"},
    ]
    await expect(page.locator("#transcript .user-turn .bubble")).to_have_text(
        [first_question, "And its population?"]
    )


async def test_model_picker_and_options_reach_the_api(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Ok."]))
    server = await start_server(
        fake=fake_anthropic, model="claude-sonnet-5-5", models=("claude-haiku-4-5",)
    )
    await page.goto(server.url)
    picker = page.locator("#model")
    await expect(picker).to_have_value("claude-sonnet-5-5")
    await picker.select_option("claude-haiku-4-5")
    await page.locator(".options summary").click()
    await page.locator("#system").fill("Answer in French.")
    await page.locator("#max-tokens").fill("64")

    await ask(page, "Hi")
    await wait_status(last_reply(page), "done")
    body = fake_anthropic.requests[0].body
    assert (body["model"], body["system"], body["max_tokens"]) == (
        "claude-haiku-4-5",
        "Answer in French.",
        64,
    )
    await expect(last_reply(page).locator(".reply-model")).to_have_text(
        "claude-haiku-4-5 · anthropic"
    )


async def test_stop_cancels_the_generation(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = numbered_chunks(200)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.05))
    # A long resume window: closing the EventSource alone would not end the upstream
    # within the test, so only the DELETE can.
    server = await start_server(fake=fake_anthropic, resume_window=60)
    await page.goto(server.url)
    await ask(page, "Count to two hundred")
    reply = last_reply(page)
    await wait_partial_text(page, "".join(chunks))

    await page.locator("#stop").click()
    await fake_anthropic.wait_closed(timeout=5.0)

    await wait_status(reply, "cancelled")
    await expect(reply.locator(".status")).to_have_text("Stopped")
    await expect(page.locator("#stop")).to_be_disabled()
    await expect(page.locator("#send")).to_be_enabled()
    await expect(page.locator("#prompt")).to_be_focused()
    stopped_text = await reply_text(reply)
    await asyncio.sleep(0.3)
    assert await reply_text(reply) == stopped_text, "text kept arriving after Stop"
    assert 0 < len(stopped_text) < len("".join(chunks))


async def test_dropped_connection_resumes_the_same_reply(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = numbered_chunks(50)
    full = "".join(chunks)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.05))
    server = await start_server(fake=fake_anthropic, retry_ms=500)
    await page.goto(server.url)
    await ask(page, "Count to fifty")
    reply = last_reply(page)
    await wait_partial_text(page, full)

    assert server.drop_connections() >= 1
    await wait_status(reply, "reconnecting")
    await expect(reply.locator(".status")).to_have_text("Reconnecting…")

    await wait_status(reply, "done")
    assert await reply_text(reply) == full  # every chunk exactly once, in order
    await expect(reply.locator(".metrics")).to_contain_text("1 reconnect")
    assert len(fake_anthropic.requests) == 1, "the reconnect started a second generation"


async def test_no_reconnect_after_done(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Short ", "and ", "done."]))
    server = await start_server(fake=fake_anthropic, retry_ms=200)
    stream_requests: list[str] = []

    def record(request: Request) -> None:
        if "/api/streams" in request.url:
            stream_requests.append(f"{request.method} {request.url.removeprefix(server.url)}")

    page.on("request", record)
    await page.goto(server.url)
    await ask(page, "Be brief")
    await wait_status(last_reply(page), "done")

    await asyncio.sleep(1.5)  # many times the 200 ms retry delay
    assert len(fake_anthropic.requests) == 1
    # One POST, one EventSource GET: the page closed it on `done` instead of letting it
    # reconnect (and be turned away with 204).
    assert [r.split(" ")[0] for r in stream_requests] == ["POST", "GET"], stream_requests
    assert await last_reply(page).get_attribute("data-status") == "done"


async def test_model_text_is_never_rendered_as_html(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    # The markup is split across chunks too, as a tokenizer would.
    chunks = ["Look: <im", 'g src=x onerror="window.__pwned=1">', " and <b>bold</b> &amp; done"]
    fake_anthropic.enqueue(Reply(chunks=chunks))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    question = "Show me <i>markup</i>"
    await ask(page, question)
    reply = last_reply(page)
    await wait_status(reply, "done")

    # Markdown decodes the entity (&amp; is "&"); the tags stay text.
    assert await reply_text(reply) == "".join(chunks).replace("&amp;", "&")
    await expect(page.locator("#transcript img")).to_have_count(0)
    await expect(page.locator("#transcript b")).to_have_count(0)
    await expect(page.locator("#transcript i")).to_have_count(0)
    await expect(page.locator("#transcript .user-turn .bubble")).to_have_text(question)
    assert await page.evaluate("typeof window.__pwned") == "undefined"


async def test_demo_mode_banner_and_provider(page: Page, start_server: StartServer) -> None:
    server = await start_server(demo_delay_ms=5)
    await page.goto(server.url)
    await expect(page.locator("#demo-banner")).to_be_visible()
    await expect(page.locator("#demo-banner")).to_contain_text("Demo mode")
    await expect(page.locator("#provider")).to_have_text("demo")

    await ask(page, "Hello, demo")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert (await reply_text(reply)).strip() != ""
    await expect(reply.locator(".reply-model")).to_contain_text("demo")


async def test_upstream_error_is_shown_inline_and_can_be_retried(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(HttpError(529, "overloaded_error", "Overloaded, try later"))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Are you there?")
    reply = last_reply(page)

    await wait_status(reply, "error")
    error = reply.locator(".error")
    await expect(error).to_be_visible()
    await expect(error.locator(".error-type")).to_have_text("overloaded_error")
    await expect(error.locator(".error-message")).to_contain_text("Overloaded")
    await expect(page.locator("#stop")).to_be_disabled()

    # The failed turn is left out of the history; Retry asks the same question again.
    fake_anthropic.enqueue(Reply(chunks=["Yes, ", "here."]))
    await error.locator(".retry").click()
    await wait_status(last_reply(page), "done")
    assert await reply_text(last_reply(page)) == "Yes, here."
    assert fake_anthropic.requests[-1].body["messages"] == [
        {"role": "user", "content": "Are you there?"}
    ]


async def test_request_error_is_shown_inline(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    server = await start_server(fake=fake_anthropic, max_message_chars=20)
    question = "This question is longer than twenty characters."
    # What the API answers for it, straight from the server.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.url}/api/streams",
            json={"messages": [{"role": "user", "content": question}]},
        ) as response,
    ):
        assert response.status >= 400
        expected = (await response.json())["error"]

    await page.goto(server.url)
    await ask(page, question)
    reply = last_reply(page)
    await wait_status(reply, "error")
    await expect(reply.locator(".error .error-type")).to_have_text(expected["type"])
    await expect(reply.locator(".error .error-message")).to_contain_text(expected["message"])
    assert fake_anthropic.requests == []


async def test_access_token_cookie_lets_the_page_and_its_event_source_in(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """With --access-token the page loads without it (it holds no secret) and asks for
    it; opening /?token=T once sets the HttpOnly cookie that fetch and EventSource then
    carry; and a cookie gone meanwhile gets the API's 401, which asks again."""
    token = "browser-token-0123456789abcdef"
    chunks = numbered_chunks(8)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.02))
    server = await start_server(fake=fake_anthropic, access_token=token)
    await page.goto(server.url)
    await expect(page.locator("#sign-in")).to_be_visible()

    await page.goto(f"{server.url}/?token={token}")
    assert page.url == server.url + "/"  # the token left the address bar
    (cookie,) = await page.context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""  # no script can read it
    await expect(page.locator("#sign-in")).to_be_hidden()
    await ask(page, "Count for me")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert await reply_text(reply) == "".join(chunks)
    assert len(fake_anthropic.requests) == 1

    await page.context.clear_cookies()
    await ask(page, "Let me in")
    refused = last_reply(page)
    await wait_status(refused, "error")
    await expect(refused.locator(".error .error-type")).to_have_text("authentication_error")
    await expect(refused.locator(".error .error-message")).to_contain_text("sign in on the page")
    await expect(page.locator("#sign-in-error")).to_have_text("Sign in, then Retry.")
    await expect(page.locator("#access-token")).to_be_focused()
    assert len(fake_anthropic.requests) == 1


async def test_phone_width_layout(
    browser: Browser, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    long_word = "https://example.com/" + "a" * 300
    chunks = ["A long link: ", long_word, *numbered_chunks(20)]
    # Silent: the chunks, then the upstream holds the reply open, so the page is
    # reliably mid-reply for the screenshot however slow the machine is.
    fake_anthropic.enqueue(Silent(chunks=chunks))
    server = await start_server(fake=fake_anthropic)
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        await page.goto(server.url)
        for selector in ("#prompt", "#send", "#stop"):
            await expect(page.locator(selector)).to_be_in_viewport(ratio=1)
            box = await page.locator(selector).bounding_box()
            assert box is not None, selector
            assert box["x"] >= 0, (selector, box)
            assert box["x"] + box["width"] <= PHONE["width"], (selector, box)
            assert box["y"] >= 0, (selector, box)
            assert box["y"] + box["height"] <= PHONE["height"], (selector, box)

        await ask(page, "Send me a long link")
        reply = last_reply(page)
        await expect(reply.locator(".parts")).to_have_text("".join(chunks))
        await expect(reply).to_have_attribute("data-status", "streaming")
        await save_screenshot(page, "chat-phone.png")
        await assert_no_horizontal_scroll(page)
        await page.locator("#stop").click()
        await wait_status(reply, "cancelled")
        await assert_no_horizontal_scroll(page)
    finally:
        await context.close()


async def test_screenshot_mid_reply(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    answer = (
        "Server-Sent Events keep one HTTP response open and write each token as its own "
        "event.\n\nEvery event carries an id, so when the connection drops the browser "
        "reconnects with Last-Event-ID and the server replays exactly what was missed, "
        "then carries on with live events. A stream that has ended answers 204, which tells "
        "the browser to stop reconnecting, so a reconnect never starts a second generation. "
        "Stop sends DELETE, which closes the upstream request at once."
    )
    words = [word + " " for word in answer.split(" ")]
    fake_anthropic.enqueue(
        Reply(chunks=["SSE is a one-way ", "stream from ", "server to ", "browser."], delay=0.04),
        # Paced so the shot (after 18 words) comes seconds before the end of the reply.
        Reply(chunks=words, delay=0.06),
    )
    server: RunningServer = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "What is SSE, in one line?")
    await wait_status(last_reply(page), "done")
    await ask(page, "How does resuming work?")
    reply = last_reply(page)
    await expect(reply.locator(".parts")).to_contain_text("".join(words[:18]).strip())
    await save_screenshot(page, "chat-mid-reply.png")
    assert await reply.get_attribute("data-status") == "streaming"  # still, after the shot
    await page.locator("#stop").click()
    await wait_status(reply, "cancelled")
