"""The operator's tools on the chat page (docs/protocol.md, "Tools"; docs/architecture.md,
"The web client"), in Chromium against the real server: a call's panel shows its name, its
input as it streams and its result, then folds; the page answers the client's tools
(`browser_locale`, an error result for one it does not implement, a denial for one that
waits for approval) and continues the reply by itself; the conversation it sends on holds
each tool turn as content arrays, after a reload too.

Also writes screenshots of the demo's two tools at desktop and phone width to artifacts/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect

from sseserver.tools.definitions import ToolSpec, tool_specs

from .conftest import StartServer
from .support.browser import (
    DESKTOP,
    PHONE,
    ask,
    assert_no_horizontal_scroll,
    checked_page,
    last_reply,
    panel_state,
    post_bodies,
    save_screenshot,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, Reply, Text, ToolUse
from .support.tool_handlers import RUNS

pytestmark = pytest.mark.browser

SCHEMA: Final = {"type": "object", "properties": {"q": {"type": "string"}}}
# A 1x1 PNG.
DOT_PNG: Final = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                  "awAAAABJRU5ErkJggg==")
LOCALE: Final = "Languages: fr-FR. Time zone: Europe/Paris."
DEMO_CLOSING: Final = ("That is what the demo's tool returned; Claude would now use it "
                       "in its answer.")

# Records every state of the tool panels' inputs, however brief, as [open, text]: the
# input streams into an open panel, the whole input replaces it when the call is
# complete, and the panel folds at its result.
RECORDER: Final = """
window.__inputs = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.tool-call .tool-input')) {
    const state = [el.closest('details').open, el.textContent];
    if (JSON.stringify(window.__inputs.at(-1)) !== JSON.stringify(state)) {
      window.__inputs.push(state);
    }
  }
}).observe(document, { subtree: true, childList: true, characterData: true,
                       attributes: true });
"""


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A French browser in Paris, so that browser_locale's answer is known."""
    async with checked_page(browser, locale="fr-FR", timezone_id="Europe/Paris") as checked:
        await checked.add_init_script(RECORDER)
        yield checked


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.reset()


def client_tools(*names: str, needs_approval: bool = False) -> tuple[ToolSpec, ...]:
    """Tools the client runs (no handler), as --tools would offer them."""
    return tool_specs([
        {"name": name, "description": f"{name} things", "input_schema": SCHEMA}
        | ({"handler": "tests.support.tool_handlers:lookup", "needs_approval": True}
           if needs_approval else {})
        for name in names
    ])


async def text_parts(reply: Locator) -> list[str]:
    """The reply's text parts as shown (each its paragraphs' text joined by "|"), in order:
    the text before a tool call and the text after it are two."""
    texts = await reply.locator(".text-part").evaluate_all(
        "parts => parts.map(p => [...p.querySelectorAll('p')].map(c => c.textContent).join('|'))")
    assert isinstance(texts, list)
    return texts


def picture(tool_input: dict[str, Any]) -> list[dict[str, Any]]:
    """A server-run tool's result with text and an image (the server refuses an image whose
    data is not base64 of its type, so only such a one reaches the page)."""
    image = {"type": "image",
             "source": {"type": "base64", "media_type": "image/png", "data": DOT_PNG}}
    return [{"type": "text", "text": f"A {tool_input['q']}"}, image]


def user(content: object) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: object) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


async def test_the_demo_tools_are_answered_shown_and_folded(
    page: Page, start_server: StartServer
) -> None:
    """`make run` with no key shows both kinds of tool: the server's in one stream, the
    page's answered and continued by itself, each in a panel that folds at its result."""
    server = await start_server(demo_delay_ms=20)
    await page.goto(server.url)
    sent = post_bodies(page)

    # current_time: the server runs it within the one stream.
    await ask(page, "What time is it in Tokyo?")
    reply = last_reply(page)
    panel = reply.locator(".tool-call")
    await wait_status(reply, "done")
    await expect(panel).to_have_count(1)
    shown = await panel_state(panel)
    result = shown["sections"][1][1]
    assert shown == {
        "summary": "Used current_time", "open": False, "state": "done",
        "sections": [["Input", '{\n  "timezone": "Asia/Tokyo"\n}'], ["Result", result]],
    }
    assert result.endswith(" JST (Asia/Tokyo)"), result
    assert await text_parts(reply) == [
        "Let me check the clock.", f"The tool answered: {result}|{DEMO_CLOSING}"]
    # While it ran the panel was open, showing the input as it streamed.
    assert await page.evaluate("window.__inputs") == [
        [True, ""], [True, '{"timezone": '], [True, '{"timezone": "Asia/Tokyo"}'],
        [True, '{\n  "timezone": "Asia/Tokyo"\n}'], [False, '{\n  "timezone": "Asia/Tokyo"\n}'],
    ]
    # A folded panel opens on click.
    await panel.locator("summary").click()
    await expect(panel).to_have_attribute("open", "")
    await panel.locator("summary").click()

    # browser_locale: the page answers it and continues the reply by itself.
    await ask(page, "What is my locale?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    panel = reply.locator(".tool-call")
    assert await panel_state(panel) == {
        "summary": "Used browser_locale", "open": False, "state": "done",
        "sections": [["Input", "{}"], ["Result · answered by this page", LOCALE]],
    }
    assert await text_parts(reply) == [
        "I'll ask your browser.", f"The tool answered: {LOCALE}|{DEMO_CLOSING}"]
    await expect(page.locator("#transcript .reply")).to_have_count(2)
    await expect(page.locator("#transcript .excluded")).to_have_count(0)
    await save_screenshot(page, "chat-tools.png")
    await page.set_viewport_size(PHONE)
    await assert_no_horizontal_scroll(page)
    await panel.locator("summary").click()  # open: the input and the page's answer
    await assert_no_horizontal_scroll(page)
    await reply.locator(".metrics").scroll_into_view_if_needed()
    await save_screenshot(page, "chat-tools-phone.png")
    await panel.locator("summary").click()
    await page.set_viewport_size(DESKTOP)

    # The next question carries both exchanges: the server's tool as the text it gave,
    # the page's as the turn's content array and the page's tool_result.
    await ask(page, "Thanks")
    await wait_status(last_reply(page), "done")
    first = assistant(f"Let me check the clock.The tool answered: {result}\n\n{DEMO_CLOSING}")
    call_id = sent[2]["messages"][3]["content"][1]["id"]
    tool_turn = [
        assistant([{"type": "text", "text": "I'll ask your browser."},
                   {"type": "tool_use", "id": call_id, "name": "browser_locale", "input": {}}]),
        user([{"type": "tool_result", "tool_use_id": call_id, "content": LOCALE}]),
    ]
    assert [body["messages"] for body in sent] == [
        [user("What time is it in Tokyo?")],
        [user("What time is it in Tokyo?"), first, user("What is my locale?")],
        [user("What time is it in Tokyo?"), first, user("What is my locale?"), *tool_turn],
        [user("What time is it in Tokyo?"), first, user("What is my locale?"), *tool_turn,
         assistant(f"The tool answered: {LOCALE}\n\n{DEMO_CLOSING}"), user("Thanks")],
    ]



async def test_a_tool_the_page_does_not_implement_gets_an_error_result_and_the_reply_goes_on(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """An operator may offer a client tool this page does not know: an error result lets
    Claude go on instead of the reply ending at the call."""
    call = ToolUse("toolu_m1", "mystery", {"q": "<b>x</b>"})
    calls = Reply(blocks=(Text(["Let me try. "]), call), stop_reason="tool_use")
    fake_anthropic.enqueue(calls, Reply(chunks=["It failed, ", "sorry."]), Reply(chunks=["Ok."]))
    server = await start_server(fake=fake_anthropic, tools=client_tools("mystery"))
    await page.goto(server.url)
    await ask(page, "Use the mystery tool")
    reply = last_reply(page)
    await wait_status(reply, "done")

    error = 'This page does not implement the tool "mystery".'
    assert await panel_state(reply.locator(".tool-call")) == {
        "summary": "Failed: mystery", "open": False, "state": "error",
        "sections": [["Input", '{\n  "q": "<b>x</b>"\n}'],
                     ["Error · answered by this page", error]],
    }
    await expect(reply.locator(".tool-call b")).to_have_count(0)
    assert await text_parts(reply) == ["Let me try. ", "It failed, sorry."]
    tool_turn = [
        assistant(calls.content()),
        user([{"type": "tool_result", "tool_use_id": "toolu_m1", "content": error,
               "is_error": True}]),
    ]
    assert fake_anthropic.requests[1].body["messages"] == [
        user("Use the mystery tool"), *tool_turn]

    await ask(page, "Never mind")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[2].body["messages"] == [
        user("Use the mystery tool"), *tool_turn, assistant("It failed, sorry."),
        user("Never mind"),
    ]


async def test_a_call_that_waits_for_approval_is_denied_and_the_reply_goes_on(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """The page does not ask for approval: it denies, the server answers the call as denied
    without running it, and later requests carry that result, not the denial."""
    calls = Reply(blocks=(ToolUse("toolu_a1", "lookup", {"q": "life"}),), stop_reason="tool_use")
    fake_anthropic.enqueue(calls, Reply(chunks=["As you wish."]), Reply(chunks=["Ok."]))
    server = await start_server(fake=fake_anthropic,
                                tools=client_tools("lookup", needs_approval=True))
    await page.goto(server.url)
    sent = post_bodies(page)
    await ask(page, "Look up life")
    reply = last_reply(page)
    await wait_status(reply, "done")

    denied = ("The user denied this tool call. Reason: This page cannot ask the user for "
              "approval.")
    assert await panel_state(reply.locator(".tool-call")) == {
        "summary": "Failed: lookup", "open": False, "state": "error",
        "sections": [["Input", '{\n  "q": "life"\n}'], ["Error", denied]],
    }
    assert RUNS.inputs == []
    approval = {"type": "tool_approval", "tool_use_id": "toolu_a1", "approved": False,
                "reason": "This page cannot ask the user for approval."}
    assert sent[1]["messages"] == [user("Look up life"), assistant(calls.content()),
                                   user([approval])]

    # Later requests carry the result the server streamed in place of the denial.
    await ask(page, "Fine")
    await wait_status(last_reply(page), "done")
    result = {"type": "tool_result", "tool_use_id": "toolu_a1", "content": denied,
              "is_error": True}
    assert sent[2]["messages"] == [
        user("Look up life"), assistant(calls.content()), user([result]),
        assistant("As you wish."), user("Fine"),
    ]
    assert fake_anthropic.requests[2].body["messages"] == sent[2]["messages"]


async def test_a_reload_mid_tool_call_rebuilds_its_panel_once_and_the_conversation_goes_on(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A reload replays the saved events, then resumes after the last one: no part of the
    panel twice, and the turns it saved still go out as content arrays."""
    tool_input = {"q": "where the reader is, in as many words as it takes"}
    call = ToolUse("toolu_r1", "browser_locale", tool_input, pieces=8)
    calls = Reply(blocks=(Text(["Asking ", "your browser. "]), call), stop_reason="tool_use",
                  delay=0.3)
    fake_anthropic.enqueue(calls, Reply(chunks=["You are ", "in Paris."]), Reply(chunks=["Ok."]))
    server = await start_server(fake=fake_anthropic, tools=client_tools("browser_locale"))
    await page.goto(server.url)
    sent = post_bodies(page)
    await ask(page, "Where am I?")
    # Reload while the input streams, once the page has saved some of it.
    compact = json.dumps(tool_input)
    await page.wait_for_function(
        """full => {
            const text = document.querySelector('.tool-call .tool-input')?.textContent ?? '';
            return text.length > full.length / 3 && text.length < full.length;
        }""",
        arg=compact,
    )
    await page.reload()

    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(page.locator(".tool-call")).to_have_count(1)
    assert await panel_state(reply.locator(".tool-call")) == {
        "summary": "Used browser_locale", "open": False, "state": "done",
        "sections": [["Input", json.dumps(tool_input, indent=2)],
                     ["Result · answered by this page", LOCALE]],
    }
    # Every input shown after the reload was a piece of the one input, none twice, in an
    # open panel, until the whole input; the panel folded at its result.
    inputs = await page.evaluate("window.__inputs")
    pretty = json.dumps(tool_input, indent=2)
    assert inputs[-2:] == [[True, pretty], [False, pretty]], inputs
    assert len(inputs) > 3, inputs
    assert all(opened and compact.startswith(text) for opened, text in inputs[:-2]), inputs
    assert await text_parts(reply) == ["Asking your browser. ", "You are in Paris."]
    tool_turn = [
        assistant(calls.content()),
        user([{"type": "tool_result", "tool_use_id": "toolu_r1", "content": LOCALE}]),
    ]
    assert fake_anthropic.request_count == 2  # the generation resumed, not started again
    assert fake_anthropic.requests[1].body["messages"] == [user("Where am I?"), *tool_turn]
    assert [len(body["messages"]) for body in sent] == [1, 3]  # the question, the continuation

    # A reload of the finished conversation still sends its content arrays.
    await page.reload()
    await expect(page.locator(".tool-call")).to_have_count(1)
    await ask(page, "Thanks")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[2].body["messages"] == [
        user("Where am I?"), *tool_turn, assistant("You are in Paris."), user("Thanks"),
    ]


async def test_a_reload_before_the_continuation_started_sends_it_again(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """The page forgets the continuation's stream until the server answers its POST; a
    reload in between sends the same continuation again rather than losing the reply."""
    calls = Reply(blocks=(Text(["Asking. "]), ToolUse("toolu_h1", "browser_locale", {})),
                  stop_reason="tool_use")
    fake_anthropic.enqueue(calls, Reply(chunks=["You are ", "in Paris."]))
    server = await start_server(fake=fake_anthropic, tools=client_tools("browser_locale"))
    held: list[Route] = []
    holding = asyncio.Event()

    async def hold_first_continuation(route: Route) -> None:
        """The continuation's first POST never reaches the server: the page is reloaded
        while it waits for the answer."""
        body = route.request.post_data_json if route.request.method == "POST" else None
        if isinstance(body, dict) and len(body["messages"]) == 3 and not held:
            held.append(route)
            holding.set()
            return
        await route.continue_()

    await page.route("**/api/streams", hold_first_continuation)
    await page.goto(server.url)
    sent = post_bodies(page)
    await ask(page, "Where am I?")
    await asyncio.wait_for(holding.wait(), 10)
    await page.reload()

    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(page.locator(".tool-call")).to_have_count(1)
    assert (await panel_state(reply.locator(".tool-call")))["sections"][1] == [
        "Result · answered by this page", LOCALE]
    assert await text_parts(reply) == ["Asking. ", "You are in Paris."]
    continuation = [user("Where am I?"), assistant(calls.content()),
                    user([{"type": "tool_result", "tool_use_id": "toolu_h1", "content": LOCALE}])]
    assert [body["messages"] for body in sent] == [[user("Where am I?")], continuation,
                                                   continuation]
    assert fake_anthropic.request_count == 2
    assert fake_anthropic.requests[1].body["messages"] == continuation


async def test_an_image_result_is_a_thumbnail_only_when_it_is_base64(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A tool's result is untrusted: its image data goes into a data: URL only when it is
    base64 of a raster type, so nothing else can be loaded or injected."""
    tools = tool_specs([{"name": "picture", "description": "draws", "input_schema": SCHEMA,
                         "handler": "tests.test_page_tools:picture"}])
    fake_anthropic.enqueue(
        Reply(blocks=(ToolUse("toolu_p1", "picture", {"q": "dot"}),), stop_reason="tool_use"),
        Reply(chunks=["Here it is."]))
    server = await start_server(fake=fake_anthropic, tools=tools)
    await page.goto(server.url)
    await ask(page, "Draw a dot")
    reply = last_reply(page)
    await wait_status(reply, "done")
    panel = reply.locator(".tool-call")
    assert (await panel_state(panel))["sections"][1] == [
        "Result", "A dot|"]
    image = panel.locator("img")
    await expect(image).to_have_count(1)
    assert await image.get_attribute("src") == f"data:image/png;base64,{DOT_PNG}"
    assert await image.get_attribute("alt") == "An image from picture"
    # Loaded under the page's CSP (img-src data:).
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1
