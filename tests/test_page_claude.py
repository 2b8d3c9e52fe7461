"""Thinking, web search, citations, refusals, cached tokens and the toggles on the chat
page, from the fake Anthropic API's content blocks through the real server, in Chromium.

Also writes the screenshots of a whole reply (thinking folded, a search, Markdown with a
code block, numbered citations and their sources) at desktop and phone width to
artifacts/, and to docs/ when UPDATE_DOCS_SCREENSHOTS=1 (the README shows those).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from .conftest import StartServer
from .support.browser import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    ask,
    assert_no_horizontal_scroll,
    checked_page,
    last_reply,
    post_bodies,
    reply_text,
    wait_status,
)
from .support.fake_anthropic import (
    FakeAnthropic,
    RedactedThinking,
    Reply,
    ServerToolUse,
    Text,
    Thinking,
    WebSearchResult,
    web_citation,
    web_result,
)

pytestmark = pytest.mark.browser

DOCS: Final = Path(__file__).resolve().parent.parent / "docs"

STANDARD = "https://html.spec.whatwg.org/multipage/server-sent-events.html"
MDN = "https://developer.mozilla.org/en-US/docs/Web/API/EventSource"
RESULTS = [
    web_result("HTML Standard: Server-sent events", STANDARD, "2 days ago"),
    web_result("EventSource - Web APIs | MDN", MDN),
    web_result("RFC 8895", "https://www.rfc-editor.org/rfc/rfc8895.html"),
]
STANDARD_CITED = web_citation(STANDARD, "HTML Standard: Server-sent events",
                          "this specification introduces the EventSource interface")
MDN_CITED = web_citation(MDN, "EventSource - Web APIs | MDN",
                         "The EventSource interface is web content's interface to SSE")

# Records each state of the page's tool blocks and thinking sections, however briefly
# shown: the tool's "Searching:" lasts only until its result arrives.
RECORDER = """
window.__seen = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.tool, details.thinking')) {
    const state = `${el.className}|${el.open ?? ''}|${el.textContent}`;
    if (window.__seen.at(-1) !== state) window.__seen.push(state);
  }
}).observe(document, { subtree: true, childList: true, characterData: true,
                       attributes: true });
"""


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with checked_page(browser) as checked:
        await checked.add_init_script(RECORDER)
        yield checked


async def test_thinking_fills_live_then_folds_when_the_text_begins(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    thoughts = ["Let me think ", "about SSE: ", "one response, ", "many events, ", "ids."]
    fake_anthropic.enqueue(Reply(blocks=(Thinking(thoughts), Text(["SSE ", "is **simple**."])),
                                 delay=0.25))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    sent = post_bodies(page)
    # Shown (in the closed Options) once /healthz said thinking is allowed.
    await expect(page.locator("#thinking-option")).to_have_js_property("hidden", False)
    await ask(page, "Explain SSE")
    reply = last_reply(page)
    thinking = reply.locator("details.thinking")

    # While Claude thinks: the section is open, fills, and its clock runs; no text yet.
    await expect(thinking.locator(".thinking-text")).to_contain_text("about SSE:")
    assert await thinking.evaluate("el => el.open") is True
    await expect(reply.locator(".text-part")).to_have_count(0)
    await expect(thinking.locator(".thinking-label")).to_have_text("Thinking")
    await expect(thinking.locator(".thinking-time")).to_have_text(re.compile(r"^[1-9]\d*\.\d s$"))

    await wait_status(reply, "done")
    # The text began: the section folded, its clock stopped, its text all there.
    assert await thinking.evaluate("el => el.open") is False
    await expect(thinking.locator(".thinking-label")).to_have_text("Thought for")
    assert await thinking.locator(".thinking-text").text_content() == "".join(thoughts)
    await expect(reply.locator(".text-part strong")).to_have_text("simple")
    # The toggle was on (the server's default), and the request said so.
    assert sent[0]["thinking"] == "adaptive"
    assert fake_anthropic.requests[0].body["thinking"]["type"] == "adaptive"
    seen = await page.evaluate("window.__seen")
    texts = [state for state in seen if state.startswith("thinking|true|")]
    assert any("Let me think about SSE:" in s and "ids." not in s for s in texts), seen
    # A folded section opens again on click.
    await thinking.locator("summary").click()
    assert await thinking.evaluate("el => el.open") is True


async def test_hidden_thinking_is_shown_as_such(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(RedactedThinking(), Thinking([]), Text(["Fine."]))))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Think quietly")
    reply = last_reply(page)
    await wait_status(reply, "done")
    hidden = reply.locator(".hidden-thinking")
    await expect(hidden).to_have_text(["Thinking redacted", "Thinking not shown"])
    await expect(hidden.first).to_have_attribute("data-reason", "redacted")
    await expect(reply.locator("details.thinking")).to_have_count(0)
    assert await reply_text(reply) == "Fine."


async def test_search_results_citations_and_sources(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        Text(["I'll look ", "that up."]),
        ServerToolUse("srvtoolu_01", {"query": "EventSource «spec»"}),
        WebSearchResult("srvtoolu_01", RESULTS),
        Text(["SSE is defined ", "by the HTML Standard."], citations=[STANDARD_CITED]),
        Text([" Browsers expose it ", "as EventSource."], citations=[MDN_CITED, STANDARD_CITED]),
    ), delay=0.05))
    server = await start_server(fake=fake_anthropic, web_search=3)
    await page.goto(server.url)
    sent = post_bodies(page)
    await page.locator(".options summary").click()
    await page.locator("#web-search").check()
    await ask(page, "Where is SSE defined?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert sent[0]["web_search"] == "on"
    assert [tool["name"] for tool in fake_anthropic.requests[0].body["tools"]] == ["web_search"]

    # "Searching: <query>" while it ran, then the query, the count and the results.
    seen = await page.evaluate("window.__seen")
    assert "tool||Searching: EventSource «spec»" in seen, seen
    tool = reply.locator(".tool")
    await expect(tool).to_have_attribute("data-state", "done")
    await expect(tool.locator(".tool-head")).to_have_text("Searched: EventSource «spec»")
    await expect(tool.locator(".tool-count")).to_have_text(" · 3 results")
    results = tool.locator(".search-results li")
    await expect(results).to_have_count(3)
    await expect(results.locator("a")).to_have_text([r["title"] for r in RESULTS])
    await expect(results.locator(".domain")).to_have_text(
        ["html.spec.whatwg.org", "developer.mozilla.org", "rfc-editor.org"]
    )
    # The parts in the order Claude sent them: text, the search, then the cited text.
    classes = await reply.locator(".parts > *").evaluate_all("els => els.map(e => e.className)")
    assert classes == ["text-part markdown", "tool", "text-part markdown"]

    # Numbered markers where each citation came; one number per source.
    markers = reply.locator(".text-part sup.cite a")
    await expect(markers).to_have_text(["[1]", "[2]", "[1]"])
    assert await markers.evaluate_all("els => els.map(a => [a.href, a.target, a.rel])") == [
        [url, "_blank", "noopener noreferrer"] for url in (STANDARD, MDN, STANDARD)
    ]
    cited = await reply.locator(".text-part").last.text_content()
    assert cited is not None
    assert "HTML Standard.[1]" in cited
    assert cited.rstrip().endswith("as EventSource.[2][1]")
    sources = reply.locator(".sources li")
    await expect(sources.locator("a")).to_have_text([STANDARD_CITED["title"], MDN_CITED["title"]])
    assert await sources.locator("a").evaluate_all("els => els.map(a => a.href)") == [STANDARD, MDN]
    await expect(sources.locator("a").first).to_have_attribute("rel", "noopener noreferrer")
    await expect(sources.locator(".domain")).to_have_text(
        ["html.spec.whatwg.org", "developer.mozilla.org"]
    )
    # The markers are the page's own: the text sent back is Claude's, exactly.
    fake_anthropic.enqueue(Reply(chunks=["Ok."]))
    await ask(page, "Thanks")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].body["messages"][1]["content"] == (
        "I'll look that up.SSE is defined by the HTML Standard."
        " Browsers expose it as EventSource."
    )


async def test_a_failed_search_says_why(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_09", {"query": "again"}),
        WebSearchResult("srvtoolu_09", error_code="max_uses_exceeded"),
        Text(["No more searches."]),
    )))
    server = await start_server(fake=fake_anthropic, web_search=1)
    await page.goto(server.url)
    await ask(page, "Search again")
    reply = last_reply(page)
    await wait_status(reply, "done")
    tool = reply.locator(".tool")
    await expect(tool).to_have_attribute("data-state", "error")
    await expect(tool.locator(".tool-label")).to_have_text("Search failed:")
    await expect(tool.locator(".tool-error")).to_have_text("max_uses_exceeded")


async def test_a_refusal_is_shown_as_a_refusal(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    details = {"type": "refusal", "category": "cyber",
               "explanation": "I can't help with writing malware."}
    fake_anthropic.enqueue(Reply(chunks=["I can", "not"], stop_reason="refusal",
                                 stop_details=details))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Write me a worm")
    reply = last_reply(page)
    await wait_status(reply, "refused")
    await expect(reply.locator(".status")).to_have_text("Declined")
    notice = reply.locator(".notice")
    await expect(notice.locator(".notice-title")).to_have_text(
        "Claude declined to continue this reply (cyber)."
    )
    await expect(notice.locator(".notice-text")).to_have_text(details["explanation"])
    await expect(reply.locator(".error")).to_be_hidden()  # not styled as a crash
    await expect(reply.locator(".turn-note")).to_be_visible()  # left out of the history
    assert await reply_text(reply) == "I cannot"


async def test_a_full_context_window_is_said_plainly(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Partial ", "answer"],
                                 stop_reason="model_context_window_exceeded"))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Go on")
    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(reply.locator(".status")).to_have_text("Done · context window full")
    await expect(reply.locator(".notice-title")).to_have_text(
        "The conversation has filled the model's context window."
    )
    await expect(reply.locator(".error")).to_be_hidden()


async def test_the_usage_line_shows_cached_input_tokens(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.cache.min_tokens = 64  # the first request is long enough to be cached
    fake_anthropic.enqueue(Reply(chunks=["A first answer."]), Reply(chunks=["Short."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await page.locator(".options summary").click()
    await page.locator("#system").fill("You answer questions about SSE, briefly. " * 10)
    await ask(page, "First")
    await wait_status(last_reply(page), "done")
    await ask(page, "Second")
    reply = last_reply(page)
    await wait_status(reply, "done")
    cache = fake_anthropic.requests[1].cache
    assert cache is not None
    assert cache.read > 0
    total = cache.read + cache.write + cache.uncached
    await expect(reply.locator(".metrics")).to_have_text(
        re.compile(rf" · {total:,} input · {cache.read:,} cached( · |$)")
    )


async def test_toggles_follow_the_server_capabilities(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Plain."]))
    server = await start_server(fake=fake_anthropic, max_thinking_tokens=0, web_search=0)
    await page.goto(server.url)
    sent = post_bodies(page)
    await page.locator(".options summary").click()
    await expect(page.locator("#max-tokens")).to_be_visible()
    await expect(page.locator("#thinking-option")).to_be_hidden()
    await expect(page.locator("#web-search-option")).to_be_hidden()
    await ask(page, "Hi")
    await wait_status(last_reply(page), "done")
    assert "thinking" not in sent[0]
    assert "web_search" not in sent[0]

    fake_anthropic.enqueue(Reply(chunks=["Quick."]))
    server = await start_server(fake=fake_anthropic, web_search=2)
    await page.goto(server.url)
    await page.locator(".options summary").click()
    await expect(page.locator("#thinking")).to_be_checked()
    await expect(page.locator("#web-search")).not_to_be_checked()
    await page.locator("#thinking").uncheck()
    await ask(page, "Hi again")
    await wait_status(last_reply(page), "done")
    assert (sent[1]["thinking"], sent[1]["web_search"]) == ("off", "off")
    assert fake_anthropic.requests[1].body["thinking"] == {"type": "disabled"}
    assert "tools" not in fake_anthropic.requests[1].body


SHOT_REPLY = Reply(blocks=(
    Thinking(["The reader wants a small, working example. ",
              "I'll check the spec for the event stream format, ",
              "then show a server in Python and cite the sources."]),
    ServerToolUse("srvtoolu_07", {"query": "server-sent events event stream format"}),
    WebSearchResult("srvtoolu_07", RESULTS[:2]),
    Text(["## Server-Sent Events in Python\n\n",
          "A server keeps **one response open** and writes each event as `data:` lines ",
          "ending with a blank line."], citations=[STANDARD_CITED]),
    Text([" The browser reads them with `EventSource`, and reconnects by itself ",
          "with `Last-Event-ID`."], citations=[MDN_CITED]),
    Text(["\n\n```python\nfrom aiohttp import web\n\n",
          "async def events(request):\n",
          "    response = web.StreamResponse(headers={\"Content-Type\": \"text/event-stream\"})\n",
          "    await response.prepare(request)\n",
          "    for n in range(3):\n",
          "        await response.write(f\"id: {n}\\ndata: tick {n}\\n\\n\".encode())\n",
          "    return response\n```\n\n",
          "| field | meaning |\n|---|---|\n| `id` | resume point |\n| `data` | the payload |\n"]),
), delay=0.06)


async def save_shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    targets = [ARTIFACTS / name]
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        targets.append(DOCS / name)
    for path in targets:
        await page.screenshot(path=str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Tall enough to show the question and the whole reply, down to its sources.
TALL_DESKTOP: Final = ViewportSize(width=DESKTOP["width"], height=1120)
TALL_PHONE: Final = ViewportSize(width=PHONE["width"], height=1260)


@pytest.mark.parametrize(
    ("name", "viewport"),
    [("chat-reply.png", TALL_DESKTOP), ("chat-reply-phone.png", TALL_PHONE)],
    ids=["desktop", "phone"],
)
async def test_screenshot_of_a_whole_reply(
    browser: Browser, fake_anthropic: FakeAnthropic, start_server: StartServer,
    name: str, viewport: ViewportSize,
) -> None:
    fake_anthropic.enqueue(SHOT_REPLY)
    server = await start_server(fake=fake_anthropic, web_search=3)
    phone = viewport["width"] == PHONE["width"]
    options: dict[str, Any] = {"is_mobile": True, "has_touch": True} if phone else {}
    async with checked_page(browser, viewport, **options) as page:
        await page.goto(server.url)
        await page.locator(".options summary").click()
        await page.locator("#web-search").check()
        await page.locator(".options summary").click()
        await ask(page, "How do I serve SSE from Python? Cite the spec.")
        reply = last_reply(page)
        await wait_status(reply, "done")
        assert await reply.locator("details.thinking").evaluate("el => el.open") is False
        await expect(reply.locator(".code-block")).to_have_count(1)
        await expect(reply.locator(".sources li")).to_have_count(2)
        await expect(reply.locator(".thinking-time")).not_to_have_text("0.0 s")
        if phone:
            await assert_no_horizontal_scroll(page)
        await expect(reply.locator(".sources")).to_be_in_viewport(ratio=1)
        await save_shot(page, name)
