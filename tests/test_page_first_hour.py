"""A new user's first hour with the chat page, in a real Chromium against the real server:
a draft is never lost, the view follows a reply that grows in large steps, a failed turn is
retried in place (after a reload too), a resumed reply's metrics are the ones the page
measured, a phone keeps most of its height for the conversation, the access token is
asked for in the page, and options the server forbids are not shown
(docs/architecture.md, "The web client").
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Request, Route, expect

from .conftest import StartServer
from .support.browser import (
    PHONE,
    TIMEOUT_MS,
    ask,
    checked_page,
    last_reply,
    reply_text,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, HttpError, Reply, count_output_tokens
from .support.fake_blocks import Text, web_citation

pytestmark = pytest.mark.browser

TOKEN = "first-hour-token-0123456789abcdef"
SPEC = "https://html.spec.whatwg.org/multipage/server-sent-events.html"


def posts(page: Page) -> list[dict[str, Any]]:
    """The bodies of every POST /api/streams the page sends, as they are sent."""
    sent: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/streams"):
            sent.append(json.loads(request.post_data or "{}"))

    page.on("request", record)
    return sent


async def distance_from_bottom(page: Page) -> float:
    value = await page.locator("#transcript").evaluate(
        "t => t.scrollHeight - t.scrollTop - t.clientHeight")
    return float(value)


# ---- a draft is never lost ----


@pytest.mark.parametrize("refused", ["5000", "0"])
async def test_an_option_the_browser_refuses_keeps_the_draft_until_it_is_sent(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer, refused: str
) -> None:
    server = await start_server(fake=fake_anthropic)  # --max-tokens 1024
    await page.goto(server.url)
    sent = posts(page)
    await page.locator(".options summary").click()
    await page.locator("#max-tokens").fill(refused)
    await ask(page, "A question I typed with care")

    prompt = page.locator("#prompt")
    await expect(prompt).to_have_value("A question I typed with care")
    assert await page.locator("#max-tokens").evaluate("el => !el.checkValidity()")
    await expect(page.locator("#transcript .turn")).to_have_count(0)
    assert sent == []

    # Fixed, then Send: the same text goes, and only now leaves the box.
    fake_anthropic.enqueue(Reply(chunks=["Sent ", "at last."]))
    await page.locator("#max-tokens").fill("64")
    await page.locator("#send").click()
    await wait_status(last_reply(page), "done")
    assert [(body["messages"][-1]["content"], body["max_tokens"]) for body in sent] == [
        ("A question I typed with care", 64)]
    await expect(prompt).to_have_value("")


async def test_a_draft_survives_a_reload_and_a_refused_request(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    server = await start_server(fake=fake_anthropic, max_message_chars=10)
    await page.goto(server.url)
    await page.locator("#prompt").fill("Half a thought")
    await page.reload()
    await expect(page.locator("#prompt")).to_have_value("Half a thought")
    # Refused by the server (413, over --max-message-chars): the error shows, and the
    # draft is still there to be shortened.
    await page.locator("#prompt").press("Enter")
    await wait_status(last_reply(page), "error")
    await expect(last_reply(page).locator(".error-type")).to_have_text("request_too_large")
    await expect(page.locator("#prompt")).to_have_value("Half a thought")
    assert fake_anthropic.requests == []


# ---- the view follows the reply ----


def growing_reply() -> Reply:
    """Text, then a 20-item list and its cited Sources in one step."""
    items = "".join(f"\n{n}. Item number {n} of the list, long enough to wrap at times"
                    for n in range(1, 21))
    cited = web_citation(SPEC, "HTML Standard: Server-sent events", "EventSource")
    # Deltas closer together than a frame, as Claude sends them: the list lands while
    # the view is still catching up with the text before it.
    return Reply(blocks=(
        Text([f"Sentence {n} of the opening paragraph. " for n in range(40)]),
        Text([f"\n\nThe list:\n{items}\n"], citations=[cited]),
    ), delay=0.008)


async def test_the_view_follows_a_reply_that_grows_in_one_large_step(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["A first answer."]), *[growing_reply()] * 3)
    server = await start_server(fake=fake_anthropic, web_search=3)
    await page.goto(server.url)
    await ask(page, "First")
    await wait_status(last_reply(page), "done")
    for question in ("Second", "Third", "Fourth"):
        await ask(page, question)
        reply = last_reply(page)
        await wait_status(reply, "done")
        await expect(reply.locator(".sources li")).to_have_count(1)
        await expect(reply.locator(".metrics")).to_be_visible()
        # The reader never scrolled: the end of the reply is in view.
        assert await distance_from_bottom(page) <= 2
        await expect(page.locator("#jump-latest")).to_be_hidden()


async def test_scrolling_up_stops_the_following_and_jump_to_latest_resumes_it(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = [f"Line {n} of a long reply.\n\n" for n in range(80)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.03))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Talk at length")
    reply = last_reply(page)
    await expect(reply.locator(".text-part p").nth(30)).to_be_attached()
    await page.locator("#transcript").hover()
    await page.mouse.wheel(0, -400)
    jump = page.locator("#jump-latest")
    await expect(jump).to_be_visible()
    held = await page.locator("#transcript").evaluate("t => t.scrollTop")
    await wait_status(reply, "done")
    assert await page.locator("#transcript").evaluate("t => t.scrollTop") == held
    assert await distance_from_bottom(page) > 100
    await jump.click()
    await expect(jump).to_be_hidden()
    assert await distance_from_bottom(page) <= 2


# ---- Retry, live and after a reload ----


async def test_retry_replaces_the_failed_turn_also_after_a_reload(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(HttpError(500, "api_error"), Reply(chunks=["Fine ", "now."]),
                           HttpError(500, "api_error"), Reply(chunks=["Fine ", "again."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Try me")
    await wait_status(last_reply(page), "error")
    await last_reply(page).locator(".retry").click()
    await wait_status(last_reply(page), "done")
    await expect(page.locator("#transcript .user-turn .bubble")).to_have_text(["Try me"])
    await expect(page.locator("#transcript .reply")).to_have_count(1)

    await ask(page, "Once more")
    await wait_status(last_reply(page), "error")
    await page.reload()
    failed = last_reply(page)
    await wait_status(failed, "error")
    await expect(failed.locator(".retry")).to_be_visible()
    await failed.locator(".retry").click()
    await wait_status(last_reply(page), "done")
    assert await reply_text(last_reply(page)) == "Fine again."
    await expect(page.locator("#transcript .user-turn .bubble")).to_have_text(
        ["Try me", "Once more"])
    await expect(page.locator("#transcript .error:not([hidden])")).to_have_count(0)
    # And what is stored is what is shown.
    await page.reload()
    await expect(page.locator("#transcript .reply")).to_have_count(2)
    await expect(page.locator("#transcript .error:not([hidden])")).to_have_count(0)


# ---- metrics of a reply resumed after a reload ----


async def test_a_resumed_reply_shows_no_timing_it_did_not_measure(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    chunks = [f"w{n:03d} " for n in range(120)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.03))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Count slowly")
    await expect(last_reply(page).locator(".metrics")).to_contain_text("tok/s")
    await page.wait_for_timeout(1200)  # a save with a last event id
    await page.reload()
    reply = last_reply(page)
    await wait_status(reply, "done")
    metrics = reply.locator(".metrics")
    tokens = count_output_tokens(chunks)
    await expect(metrics).to_have_text(
        re.compile(rf"^resumed · {tokens} tokens · 12 input(?: · 0 cached)?$"))
    title = await metrics.get_attribute("title")
    assert title is not None
    assert title.startswith("Resumed after a reload")
    assert "usage.output_tokens reported by the server" in title


# ---- a phone ----


async def test_a_phone_keeps_most_of_its_height_for_the_conversation(
    browser: Browser, start_server: StartServer
) -> None:
    server = await start_server()  # the demo: its banner shows
    async with checked_page(browser, viewport=PHONE) as page:
        await page.goto(server.url)
        banner = page.locator("#demo-banner")
        await expect(banner).to_be_visible()

        async def share() -> float:
            height = await page.locator("#transcript").evaluate("t => t.clientHeight")
            return float(height) / PHONE["height"]

        with_banner = await share()
        await banner.get_by_role("button", name="Dismiss the demo notice").click()
        await expect(banner).to_have_count(0)
        without = await share()
        await page.locator(".options summary").click()
        with_options = await share()
        print(f"conversation at 360x740: {with_banner:.0%} with the banner, {without:.0%} "
              f"without, {with_options:.0%} with Options open")
        assert with_banner >= 0.70
        assert without >= 0.78
        assert with_options >= 0.50
        await page.reload()  # dismissed for good
        await expect(page.locator("#transcript")).to_be_visible()
        await expect(page.locator("#demo-banner")).to_have_count(0)


# ---- the access token, asked for in the page ----


async def test_the_page_asks_for_the_access_token_and_says_when_it_is_wrong(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    server = await start_server(fake=fake_anthropic, access_token=TOKEN)
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    await page.goto(server.url)
    form = page.locator("#sign-in")
    await expect(form).to_be_visible()
    await expect(page.locator("#access-token")).to_be_focused()
    sent = posts(page)
    await ask(page, "Hello behind a token")
    await expect(page.locator("#sign-in-error")).to_have_text(
        "Sign in first: your message stays in the box.")
    assert sent == []

    await page.locator("#access-token").fill("not-the-token-0123456789abcdef")
    await page.locator("#access-token").press("Enter")
    await expect(page.locator("#sign-in-error")).to_have_text(
        "Wrong token: check it and try again.")
    await page.locator("#access-token").fill(TOKEN)
    await form.get_by_role("button", name="Sign in").click()
    await expect(form).to_be_hidden()

    fake_anthropic.enqueue(Reply(chunks=["Welcome ", "in."]))
    await expect(page.locator("#prompt")).to_have_value("Hello behind a token")
    await page.locator("#send").click()
    await wait_status(last_reply(page), "done")
    assert await reply_text(last_reply(page)) == "Welcome in."
    # Signed in for the next visit; and the token never reached an address.
    await page.reload()
    await expect(form).to_be_hidden()
    assert all(TOKEN not in url for url in visited), visited
    history = await page.evaluate("history.length")
    assert history <= 3


async def test_a_wrong_token_in_the_address_leaves_it_and_the_form_says_so(
    page: Page, start_server: StartServer
) -> None:
    server = await start_server(access_token=TOKEN)
    await page.goto(f"{server.url}/?token=wrong-token-0123456789abcdef")
    assert page.url == server.url + "/"
    await expect(page.locator("#sign-in-error")).to_have_text(
        "Wrong token: check it and try again.")
    await page.reload()  # said once
    await expect(page.locator("#sign-in")).to_be_visible()
    await expect(page.locator("#sign-in-error")).to_be_hidden()


# ---- options the server forbids ----


async def test_options_the_server_forbids_are_hidden_and_not_sent(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    server = await start_server(fake=fake_anthropic, max_thinking_tokens=0)

    async def without_client_system(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        body["capabilities"]["client_system"] = False
        await route.fulfill(response=response, json=body)

    await page.route("**/healthz", without_client_system)
    await page.goto(server.url)
    sent = posts(page)
    await page.locator(".options summary").click()
    await expect(page.locator("#system-option")).to_be_hidden(timeout=TIMEOUT_MS)
    await expect(page.locator("#thinking-option")).to_be_hidden()
    await expect(page.locator("#web-search-option")).to_be_hidden()
    await expect(page.locator("#max-tokens")).to_be_visible()
    # Whatever the hidden field holds (a value from before), it is not sent.
    await page.locator("#system").evaluate("el => { el.value = 'Be a pirate.'; }")
    fake_anthropic.enqueue(Reply(chunks=["Plain."]))
    await ask(page, "Hi")
    await wait_status(last_reply(page), "done")
    assert "system" not in sent[0]
    assert "thinking" not in sent[0]


# ---- a demo worth showing ----


async def test_the_demo_shows_code_a_table_and_a_citation_for_different_questions(
    page: Page, start_server: StartServer
) -> None:
    """What the README's screenshot shows, offline: each question gets its own reply."""
    server = await start_server(web_search=3)  # the demo provider
    await page.goto(server.url)
    await page.locator(".options summary").click()
    await page.locator("#web-search").check()
    await ask(page, "Show me some Python code")
    code = last_reply(page)
    await wait_status(code, "done")
    await expect(code.locator(".code-block")).to_have_count(2)
    await expect(code.locator(".code-block .copy-code").first).to_have_text("Copy")
    await expect(code.locator("table")).to_have_count(0)

    await ask(page, "Compare SSE and WebSocket in a table")
    table = last_reply(page)
    await wait_status(table, "done")
    await expect(table.locator("table th")).to_have_count(4)
    await expect(table.locator("table tbody tr")).to_have_count(5)
    await expect(table.locator(".code-block")).to_have_count(0)

    await ask(page, "Search for where SSE is defined")
    cited = last_reply(page)
    await wait_status(cited, "done")
    await expect(cited.locator(".tool")).to_contain_text("Server-Sent Events standard")
    await expect(cited.locator(".sources li")).to_have_count(2)
    await expect(cited.locator("sup.cite")).to_have_count(2)
    await expect(cited.locator("table")).to_have_count(0)
