"""The chat page renders Claude's Markdown, safely, in a real headless Chromium.

The reply comes from the fake Anthropic API through the real server, cut into chunks
at awkward places (inside a fence, inside a tag, inside a link), the way a tokenizer
cuts it, so the page's incremental rendering is what is tested. The page fixture fails
a test on any script error, CSP violation or dialog.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from .conftest import StartServer
from .support.browser import ask, checked_page, last_reply, reply_text, wait_status
from .support.fake_anthropic import FakeAnthropic, Reply

pytestmark = pytest.mark.browser

# Code whose exact bytes matter: a tab, a blank line, markup characters, trailing spaces.
CODE = (
    'def greet(name):\n\tif not name:\n        return "<nobody> & co"\n\n'
    '    return f"hi {name}"  '
)


def cut(text: str, size: int) -> list[str]:
    """`text` in chunks of `size` characters: boundaries fall anywhere, as tokens do."""
    return [text[i:i + size] for i in range(0, len(text), size)]


async def test_markdown_renders_as_elements(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    answer = (
        "## Plan\n\n"
        "Use **bold**, *emphasis* and `inline_code()`.\n\n"
        "- first item\n"
        "- second item\n\n"
        "1. one\n"
        "2. two\n\n"
        "| Name | Value |\n"
        "|:-----|------:|\n"
        "| a    | 1     |\n"
        "| b    | 22    |\n\n"
        f"```python\n{CODE}\n```\n\n"
        "See [the docs](https://example.com/docs?x=1&y=2) for more.\n"
    )
    fake_anthropic.enqueue(Reply(chunks=cut(answer, 7), delay=0.005))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Show me Markdown")
    reply = last_reply(page)
    await wait_status(reply, "done")
    md = reply.locator(".text-part")

    await expect(md.locator("h2")).to_have_text("Plan")
    await expect(md.locator("strong")).to_have_text("bold")
    await expect(md.locator("em")).to_have_text("emphasis")
    await expect(md.locator("p > code")).to_have_text("inline_code()")
    await expect(md.locator("ul > li")).to_have_text(["first item", "second item"])
    await expect(md.locator("ol > li")).to_have_text(["one", "two"])
    await expect(md.locator("table th")).to_have_text(["Name", "Value"])
    await expect(md.locator("table td")).to_have_text(["a", "1", "b", "22"])
    await expect(md.locator("table td").nth(1)).to_have_attribute("align", "right")
    code = md.locator(".code-block pre code")
    await expect(code).to_have_count(1)
    assert await code.evaluate("el => el.textContent") == CODE + "\n"
    await expect(code).to_have_class("language-python")
    await expect(md.locator(".code-block .code-lang")).to_have_text("python")
    link = md.locator("a", has_text="the docs")
    await expect(link).to_have_attribute("href", "https://example.com/docs?x=1&y=2")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    # The asterisks, backticks and pipes are gone: they were Markdown.
    shown = await reply_text(reply)
    assert "**" not in shown
    assert "`" not in shown
    assert "|:--" not in shown
    # The history keeps the Markdown source, exactly: it is what Claude wrote.
    fake_anthropic.enqueue(Reply(chunks=["Ok."]))
    await ask(page, "Thanks")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].body["messages"][1] == {
        "role": "assistant", "content": answer,
    }


async def test_copy_puts_the_exact_code_on_the_clipboard(
    browser: Browser, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    answer = f"Here:\n\n```python\n{CODE}\n```\n\nAnd a second one:\n\n```\nplain <text>\n```\n"
    fake_anthropic.enqueue(Reply(chunks=cut(answer, 5)))
    server = await start_server(fake=fake_anthropic)
    async with checked_page(browser) as page:
        await page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=server.url
        )
        await page.goto(server.url)
        await ask(page, "Code please")
        reply = last_reply(page)
        await wait_status(reply, "done")
        buttons = reply.locator(".code-block button.copy-code")
        await expect(buttons).to_have_count(2)

        await buttons.first.click()
        await expect(buttons.first).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == CODE
        await buttons.nth(1).click()
        assert await page.evaluate("navigator.clipboard.readText()") == "plain <text>"
        await expect(buttons.first).to_have_text("Copy")  # back after a moment


XSS = [
    'An image: <img src=x onerror="window.__pwned=1">\n\n',
    "<script>window.__pwned=2</script>\n\n",
    "Inline <script>window.__pwned=3</script> too, and <svg onload=window.__pwned=4>.\n\n",
    '<iframe src="javascript:window.__pwned=5"></iframe>\n\n',
    "```html\n<script>window.__pwned=6</script>\n<img src=x onerror=window.__pwned=7>\n```\n\n",
    "[x](javascript:alert(1)) and [y](JaVaScRiPt:window.__pwned=8) and "
    "[z]( javascript:window.__pwned=9) and [d](data:text/html,<script>alert(1)</script>)\n\n",
    "![pic](javascript:window.__pwned=10) <javascript:alert(1)> [ref][r]\n\n",
    "[r]: javascript:window.__pwned=11\n\n",
    '<a href="javascript:window.__pwned=12">raw link</a> <b onclick="window.__pwned=13">b</b>\n',
]


async def test_markup_and_script_urls_render_inert(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    answer = "".join(XSS)
    fake_anthropic.enqueue(Reply(chunks=cut(answer, 6)))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Try to break out")
    reply = last_reply(page)
    await wait_status(reply, "done")
    transcript = page.locator("#transcript")

    for tag in ("img", "script", "svg", "iframe", "b", "style", "object", "embed"):
        await expect(transcript.locator(tag)).to_have_count(0)
    # No element of the page carries an event handler or a script URL, and nothing in
    # the transcript a data: URL (the page's own icon in <head> is one).
    found = await page.evaluate(
        """() => [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
            .filter(a => /^on/i.test(a.name)
                || /^\\s*(javascript|vbscript):/i.test(a.value)
                || (el.closest('#transcript') && /^\\s*data:/i.test(a.value)))
            .map(a => `${el.tagName} ${a.name}=${a.value}`))"""
    )
    assert found == []
    # Every link in the reply is http(s), or has no href at all.
    hrefs = await reply.locator("a[href]").evaluate_all("els => els.map(a => a.href)")
    assert all(href.startswith(("http://", "https://")) for href in hrefs), hrefs
    # The markup shows as the text it is; the fenced code is code, not markup.
    shown = await reply_text(reply)
    assert '<img src=x onerror="window.__pwned=1">' in shown
    assert "<script>window.__pwned=2</script>" in shown
    assert '<a href="javascript:window.__pwned=12">raw link</a>' in shown
    code = reply.locator(".code-block code")
    assert await code.evaluate("el => el.textContent") == (
        "<script>window.__pwned=6</script>\n<img src=x onerror=window.__pwned=7>\n"
    )
    # What were script links are their labels, as text.
    assert "x and y and z and d" in shown
    await reply.locator(".code-block button.copy-code").click()
    await page.locator(".text-part p").first.click()
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert page.url == server.url + "/"
