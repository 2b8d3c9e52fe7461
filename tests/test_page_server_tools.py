"""The server tools Claude runs on the API's side, on the chat page (docs/protocol.md,
"Server tools"; docs/architecture.md, "The web client"), in Chromium against the real
server and the fake Anthropic API: a fetched page is a source in its tool's list; a code
run, a command and a text editor's edit are folded panels with what ran, stdout, stderr,
the return code and the files created; an MCP call is a tool panel naming its server; a
compaction is a marker whose block goes back with the next question, as the container's
id does; content the server does not know is a note; and the Options panel shows the
toggles and effort levels the server and the model allow.

Also writes screenshots of a reply with each kind at desktop and phone width to artifacts/.
"""

from __future__ import annotations

import asyncio
from typing import Final

import aiohttp
import pytest
from playwright.async_api import Page, expect

from sseserver.server_tools_config import McpServer
from sseserver.tools.definitions import tool_specs

from .conftest import StartServer
from .support.browser import (
    DESKTOP,
    PHONE,
    ask,
    assert_no_horizontal_scroll,
    last_reply,
    panel_state,
    post_bodies,
    save_screenshot,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, Reply, ServerToolUse, Text, ToolUse
from .support.fake_blocks import (
    BashResult,
    CodeExecutionResult,
    Compaction,
    ContainerUpload,
    McpToolResult,
    McpToolUse,
    TextEditorResult,
    ToolSearchResult,
    UnknownBlock,
    WebFetchResult,
)
from .support.fake_models import capabilities

pytestmark = pytest.mark.browser

PAGE_URL: Final = "https://example.com/guide/sse?x=<b>1</b>"
CONTAINER: Final = {"id": "container_011CZ", "expires_at": "2099-01-01T00:00:00Z"}
HOSTILE: Final = "<img src=x onerror=alert(1)>"
EDIT: Final = {"command": "str_replace", "path": "/tmp/app.py", "old_str": "x = 1",
               "new_str": f"x = '{HOSTILE}'"}
SUMMARY: Final = ["The user asked about SSE; ", "Claude explained EventSource."]


def code_run_reply() -> Reply:
    """A reply that runs a command (which creates a file), edits a file, and runs code,
    then says so; in a container."""
    return Reply(blocks=(
        ServerToolUse("srvtoolu_b1", {"command": f"ls -l; echo '{HOSTILE}'"},
                      name="bash_code_execution"),
        BashResult("srvtoolu_b1", stdout=f"total 0\n{HOSTILE}\n", stderr="ls: warning\n",
                   return_code=2, file_ids=("file_011A",)),
        ServerToolUse("srvtoolu_e1", EDIT, name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_e1", {
            "type": "text_editor_code_execution_str_replace_result",
            "lines": ["x = '<img src=x onerror=alert(1)>'"], "new_lines": 1, "new_start": 1,
            "old_lines": 1, "old_start": 1}),
        ServerToolUse("srvtoolu_c1", {"code": "print(6 * 7)"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c1", stdout="42\n"),
        Text(["All ", "done."]),
    ), container=CONTAINER)


BASH_PANEL: Final = {
    "summary": "Ran a command · exit 2", "open": False, "state": "done",
    "sections": [["Command", f"ls -l; echo '{HOSTILE}'"],
                 ["Stdout", f"total 0\n{HOSTILE}\n"], ["Stderr", "ls: warning\n"],
                 ["Return code", "2"], ["Files created", "file_011A.txt file_011A"]],
}
EDIT_PANEL: Final = {
    "summary": "Edited /tmp/app.py", "open": False, "state": "done",
    "sections": [["Command", "str_replace /tmp/app.py"], ["Replace", "x = 1"],
                 ["With", f"x = '{HOSTILE}'"], ["Result", f"x = '{HOSTILE}'"]],
}
CODE_PANEL: Final = {
    "summary": "Ran code · exit 0", "open": False, "state": "done",
    "sections": [["Code", "print(6 * 7)"], ["Stdout", "42\n"], ["Stderr", "(empty)"],
                 ["Return code", "0"]],
}


async def open_with_options(page: Page, url: str, *option_ids: str) -> None:
    """Open the page at `url` and turn these options on in its Options panel (left open)."""
    await page.goto(url)
    await page.locator(".options summary").click()
    for option_id in option_ids:
        await page.locator(f"#{option_id}").check()


async def test_a_fetched_page_is_shown_as_a_source(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_f1", {"url": PAGE_URL}, name="web_fetch"),
        WebFetchResult("srvtoolu_f1", PAGE_URL, title=f"SSE guide {HOSTILE}"),
        ServerToolUse("srvtoolu_f2", {"url": "https://example.org/gone"}, name="web_fetch"),
        WebFetchResult("srvtoolu_f2", "https://example.org/gone", error_code="url_not_accessible"),
        Text(["Read it."]),
    )))
    server = await start_server(fake=fake_anthropic, web_fetch=2)
    await open_with_options(page, server.url, "web-fetch")
    sent = post_bodies(page)
    await ask(page, "Read this page")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert sent[0]["web_fetch"] == "on"
    assert [tool["name"] for tool in fake_anthropic.requests[0].body["tools"]] == ["web_fetch"]

    fetches = reply.locator('.tool[data-tool="web_fetch"]')
    await expect(fetches).to_have_count(2)
    assert await fetches.evaluate_all("""els => els.map(el => ({
        state: el.dataset.state, head: el.querySelector('.tool-head').textContent,
        pages: [...el.querySelectorAll('.search-results li')].map(li => [
            li.querySelector('a')?.getAttribute('href'), li.querySelector('a')?.rel,
            li.querySelector('a')?.target, li.textContent]),
        error: el.querySelector('.tool-error')?.textContent ?? null,
    }))""") == [
        {"state": "done", "head": f"Fetched: {PAGE_URL}",
         "pages": [[PAGE_URL, "noopener noreferrer", "_blank",
                    f"SSE guide {HOSTILE}example.com"]], "error": None},
        {"state": "error", "head": "Fetch failed: https://example.org/gone", "pages": [],
         "error": "url_not_accessible"},
    ]
    await expect(reply.locator(".parts img")).to_have_count(0)


async def test_code_runs_are_folded_panels_and_the_container_goes_back(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """Each run shows exactly what ran and what it gave, as text; the next request with
    code execution on names the reply's container, one with it off does not."""
    fake_anthropic.enqueue(code_run_reply(), Reply(chunks=["Same box."]), Reply(chunks=["Ok."]))
    server = await start_server(fake=fake_anthropic, code_execution=True)
    await open_with_options(page, server.url, "code-execution")
    sent = post_bodies(page)
    await ask(page, "Run things")
    reply = last_reply(page)
    await wait_status(reply, "done")

    panels = reply.locator(".code-run")
    await expect(panels).to_have_count(3)
    assert [await panel_state(panels.nth(i)) for i in range(3)] == [
        BASH_PANEL, EDIT_PANEL, CODE_PANEL]
    await expect(reply.locator(".parts img")).to_have_count(0)
    # A folded panel opens on click.
    await panels.first.locator("summary").click()
    await expect(panels.first).to_have_attribute("open", "")

    await ask(page, "Again")
    await wait_status(last_reply(page), "done")
    assert (sent[1]["code_execution"], sent[1]["container"]) == ("on", CONTAINER["id"])
    assert fake_anthropic.requests[1].body["container"] == CONTAINER["id"]

    await page.locator("#code-execution").uncheck()
    await ask(page, "Thanks")
    await wait_status(last_reply(page), "done")
    assert sent[2]["code_execution"] == "off"
    assert "container" not in sent[2]
    assert "container" not in fake_anthropic.requests[2].body


async def test_a_reload_mid_run_keeps_the_panel_exact(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """The page reloads while a command runs (its result waits for the created file's
    name): the resumed reply shows the panel exactly as an uninterrupted one, and the
    container still goes back with the next question."""
    fake_anthropic.file_delay = 1.5
    fake_anthropic.enqueue(code_run_reply(), Reply(chunks=["Same box."]))
    server = await start_server(fake=fake_anthropic, code_execution=True)
    await open_with_options(page, server.url, "code-execution")
    sent = post_bodies(page)
    await ask(page, "Run things")
    running = last_reply(page).locator('.code-run[data-state="running"]')
    await expect(running).to_have_count(1)
    assert await panel_state(running) == {
        "summary": "Running a command…", "open": True, "state": "running",
        "sections": [["Command", f"ls -l; echo '{HOSTILE}'"]],
    }
    await page.reload()
    reply = last_reply(page)
    await wait_status(reply, "done")
    panels = reply.locator(".code-run")
    assert [await panel_state(panels.nth(i)) for i in range(3)] == [
        BASH_PANEL, EDIT_PANEL, CODE_PANEL]
    assert len(fake_anthropic.requests) == 1, "the reload started a second generation"

    await page.locator(".options summary").click()
    await page.locator("#code-execution").check()
    await ask(page, "Again")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].body["container"] == CONTAINER["id"]
    assert sent[-1]["container"] == CONTAINER["id"]


async def test_a_tool_continuation_carries_the_compaction_once_and_the_container(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A reply that compacted, ran code and then called the page's tool is continued with
    the turn's content led by the compaction block once, and the reply's container."""
    compaction = Compaction(SUMMARY)
    calls = Reply(blocks=(
        compaction,
        ServerToolUse("srvtoolu_b1", {"command": "date"}, name="bash_code_execution"),
        BashResult("srvtoolu_b1", stdout="Sun Dec  6\n"),
        ToolUse("toolu_l1", "browser_locale", {}),
    ), stop_reason="tool_use", container=CONTAINER)
    fake_anthropic.enqueue(calls, Reply(chunks=["Done."]))
    tools = tool_specs([{"name": "browser_locale", "description": "The browser's locale",
                         "input_schema": {"type": "object"}}])
    server = await start_server(fake=fake_anthropic, tools=tools, code_execution=True,
                                compaction=True)
    await open_with_options(page, server.url, "code-execution")
    await ask(page, "What day is it where I am?")
    await wait_status(last_reply(page), "done")
    continuation = fake_anthropic.requests[1].body
    assert continuation["container"] == CONTAINER["id"]
    turn = continuation["messages"][1]
    assert turn["role"] == "assistant"
    assert turn["content"][0] == compaction.content()
    assert [block["type"] for block in turn["content"]].count("compaction") == 1


async def test_an_mcp_call_is_a_tool_panel_naming_its_server(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        McpToolUse("mcptoolu_1", "get_weather", "weather", {"city": HOSTILE}),
        McpToolResult("mcptoolu_1", ["Sunny", "20 °C"]),
        McpToolUse("mcptoolu_2", "get_history", "weather", {}),
        McpToolResult("mcptoolu_2", "rain " * 8000, is_error=True),
        Text(["It is sunny."]),
    )))
    server = await start_server(
        fake=fake_anthropic, mcp_servers=(McpServer("weather", "https://mcp.example.com/sse"),))
    await page.goto(server.url)
    await ask(page, "Weather?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    panels = reply.locator(".tool-call")
    await expect(panels).to_have_count(2)
    panel = panels.first
    assert await panel.get_attribute("data-server") == "weather"
    assert await panel_state(panel) == {
        "summary": "Used get_weather on weather", "open": False, "state": "done",
        "sections": [["Input", f'{{\n  "city": "{HOSTILE}"\n}}'], ["Result", "Sunny\n20 °C"]],
    }
    # A long result comes cut short (the server's bound), and says so; a failed one is red.
    long = await panel_state(panels.nth(1))
    assert (long["summary"], long["state"], long["sections"][0]) == (
        "Failed: get_history on weather", "error", ["Input", "{}"])
    assert long["sections"][1][0] == "Error"
    assert "rain " * 100 in long["sections"][1][1]
    assert len(long["sections"][1][1]) < len("rain " * 8000)
    await expect(panels.nth(1).locator(":scope > .tool-empty")).to_have_text(
        "(cut short by the server)")
    await expect(reply.locator(".parts img")).to_have_count(0)


async def test_a_compaction_is_marked_and_its_block_goes_back_first(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """The marker folds the summary; the next question sends the compaction block exactly
    as the API gave it, before the reply's text; after a reload too."""
    compaction = Compaction(SUMMARY)
    fake_anthropic.enqueue(
        Reply(blocks=(compaction, Text(["Going ", "on."]))),
        Reply(chunks=["Yes."]), Reply(chunks=["Still."]))
    server = await start_server(fake=fake_anthropic, compaction=True)
    await page.goto(server.url)
    await ask(page, "A long chat")
    reply = last_reply(page)
    await wait_status(reply, "done")
    marker = reply.locator(".compaction")
    assert await marker.evaluate(
        "el => [el.tagName, el.open, el.querySelector('summary').textContent, "
        "el.querySelector('.compaction-text').textContent]"
    ) == ["DETAILS", False, "Earlier turns summarized", "".join(SUMMARY)]

    await ask(page, "More")
    await wait_status(last_reply(page), "done")
    first = {"role": "assistant",
             "content": [compaction.content(), {"type": "text", "text": "Going on."}]}
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "A long chat"}, first, {"role": "user", "content": "More"}]

    await page.reload()
    await expect(page.locator("#transcript .reply .compaction")).to_have_count(1)
    await ask(page, "After reload")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[2].body["messages"][:2] == [
        {"role": "user", "content": "A long chat"}, first]


async def test_a_compaction_stop_is_a_note_and_a_failed_one_is_marked(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A reply that stopped at its compaction is kept (its block alone is the assistant's
    message), with a note saying it paused; a compaction without a summary says so."""
    failed = Compaction(None)
    fake_anthropic.enqueue(Reply(blocks=(failed,), stop_reason="compaction"),
                           Reply(chunks=["On we go."]))
    server = await start_server(fake=fake_anthropic, compaction=True)
    await page.goto(server.url)
    await ask(page, "A long chat")
    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(reply.locator(".compaction")).to_have_text("Earlier turns could not be summarized")
    await expect(reply.locator(".notice-title")).to_have_text(
        "Claude summarized the earlier turns and paused.")
    await expect(reply.locator(".notice-text")).to_have_text(
        "Send a message to go on from the summary.")
    await expect(page.locator("#transcript .excluded")).to_have_count(0)
    await ask(page, "Go on")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].body["messages"] == [
        {"role": "user", "content": "A long chat"},
        {"role": "assistant", "content": [failed.content()]},
        {"role": "user", "content": "Go on"}]


async def test_unknown_content_and_a_container_upload_are_small_notes(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        Text(["Before. "]), UnknownBlock({"type": "future_block", "x": HOSTILE}),
        ContainerUpload("file_011U"), Text(["After."]))))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await ask(page, "Something new")
    reply = last_reply(page)
    await wait_status(reply, "done")
    notes = reply.locator(".unsupported")
    await expect(notes).to_have_count(1)
    await expect(notes).to_have_text("Unsupported content (future_block)")
    order = await reply.locator(".parts > *").evaluate_all(
        "els => els.map(el => el.className.split(' ')[0])")
    assert order == ["text-part", "unsupported", "container-file", "text-part"]
    await expect(reply.locator(".container-file")).to_have_text(
        "File in the container: file_011U")
    await page.reload()
    await expect(last_reply(page).locator(".unsupported")).to_have_text(
        "Unsupported content (future_block)")
    await expect(last_reply(page).locator(".container-file")).to_have_text(
        "File in the container: file_011U")


async def test_failed_runs_and_a_tool_search_show_what_the_api_said(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A run the API could not do shows its error code (and message), folded; a tool
    search's panel lists the tools it found."""
    fake_anthropic.enqueue(Reply(blocks=(
        ServerToolUse("srvtoolu_s1", {"pattern": "weather"}, name="tool_search_tool_regex"),
        ToolSearchResult("srvtoolu_s1", ("get_weather", "get_forecast")),
        ServerToolUse("srvtoolu_c1", {"code": "while True: pass"}, name="code_execution"),
        CodeExecutionResult("srvtoolu_c1", error_code="execution_time_exceeded"),
        ServerToolUse("srvtoolu_e1", {"command": "view", "path": "/nope"},
                      name="text_editor_code_execution"),
        TextEditorResult("srvtoolu_e1", error_code="unavailable",
                         error_message=f"No such file {HOSTILE}"),
        Text(["Done."]),
    )))
    tools = tool_specs([{"name": "get_weather", "description": "Weather",
                         "input_schema": {"type": "object"}}])
    server = await start_server(fake=fake_anthropic, tools=tools, tool_search=True,
                                code_execution=True)
    await open_with_options(page, server.url, "tool-search", "code-execution")
    await ask(page, "Find a tool")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert await panel_state(reply.locator('.tool-call[data-tool="tool_search_tool_regex"]')) == {
        "summary": "Used tool_search_tool_regex", "open": False, "state": "done",
        "sections": [["Input", '{\n  "pattern": "weather"\n}'],
                     ["Result", "get_weather, get_forecast"]],
    }
    runs = reply.locator(".code-run")
    assert [await panel_state(runs.nth(i)) for i in range(2)] == [
        {"summary": "Run failed", "open": False, "state": "error",
         "sections": [["Code", "while True: pass"], ["Error", "execution_time_exceeded"]]},
        {"summary": "Run failed", "open": False, "state": "error",
         "sections": [["Command", "view /nope"],
                      ["Error", f"unavailable: No such file {HOSTILE}"]]},
    ]
    await expect(reply.locator(".parts img")).to_have_count(0)


async def models_known(server_url: str, model: str) -> None:
    """Wait until /healthz reports the model's capabilities (read in the background)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"{server_url}/healthz") as response:
                if model in (await response.json())["capabilities"]["models"]:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"/healthz never reported {model}")


async def test_the_options_show_what_the_server_and_model_allow(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A toggle appears only when /healthz allows it and the model does not lack it, starts
    off and is sent as its field; the effort selector lists the model's levels."""
    fake_anthropic.models["claude-sonnet-5-5"] = capabilities(
        effort=("low", "high"), web_fetch=False)
    fake_anthropic.models["claude-haiku-5"] = capabilities(effort=None, code_execution=False)
    server = await start_server(fake=fake_anthropic, model="claude-sonnet-5-5", web_fetch=3,
                                code_execution=True, models=("claude-sonnet-5-5", "claude-haiku-5"))
    await models_known(server.url, "claude-haiku-5")
    await page.goto(server.url)
    sent = post_bodies(page)
    await page.locator(".options summary").click()
    await expect(page.locator("#code-execution-option")).to_be_visible()
    await expect(page.locator("#effort-option")).to_be_visible()
    for hidden in ("web-fetch", "tool-search"):
        await expect(page.locator(f"#{hidden}-option")).to_be_hidden()
    assert not await page.locator("#code-execution").is_checked()
    assert await page.locator("#effort option").evaluate_all(
        "os => os.map(o => [o.value, o.textContent])") == [
            ["", "Default"], ["low", "Low"], ["high", "High"]]
    await ask(page, "Defaults")
    await wait_status(last_reply(page), "done")
    await page.locator("#code-execution").check()
    await page.locator("#effort").select_option("high")
    await ask(page, "Harder")
    await wait_status(last_reply(page), "done")
    assert [{key: body.get(key) for key in ("web_fetch", "code_execution", "effort")}
            for body in sent] == [
        {"web_fetch": "off", "code_execution": "off", "effort": None},
        {"web_fetch": "off", "code_execution": "on", "effort": "high"}]
    assert "tool_search" not in sent[0]
    upstream = fake_anthropic.requests[-1].body
    assert upstream["output_config"] == {"effort": "high"}
    assert [tool["name"] for tool in upstream["tools"]] == ["code_execution"]

    # Another model: its own toggles and no effort levels; what it lacks is not asked for.
    await page.locator("#model").select_option("claude-haiku-5")
    await expect(page.locator("#web-fetch-option")).to_be_visible()
    for hidden in ("code-execution", "effort"):
        await expect(page.locator(f"#{hidden}-option")).to_be_hidden()
    await ask(page, "Quick")
    await wait_status(last_reply(page), "done")
    assert {key: sent[2].get(key) for key in ("model", "code_execution", "effort")} == {
        "model": "claude-haiku-5", "code_execution": "off", "effort": None}
    assert "tools" not in fake_anthropic.requests[-1].body


async def test_a_models_capabilities_read_after_the_page_loaded_show_without_a_reload(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A page opened before the server has read its model's capabilities shows no effort
    levels; once /healthz knows them they appear, a toggle set meanwhile stays set, and the
    page stops asking."""
    fake_anthropic.models["claude-sonnet-5-5"] = capabilities(effort=("low", "high"))
    fake_anthropic.models_delay = 2.5
    server = await start_server(fake=fake_anthropic, model="claude-sonnet-5-5",
                                code_execution=True)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url)
            if request.url.endswith("/healthz") else None)
    await page.goto(server.url)
    await page.locator(".options summary").click()
    await expect(page.locator("#code-execution-option")).to_be_visible()
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as r:
        assert "claude-sonnet-5-5" not in (await r.json())["capabilities"]["models"]
    await expect(page.locator("#effort-option")).to_be_hidden()
    await page.locator("#code-execution").check()
    await expect(page.locator("#effort-option")).to_be_visible(timeout=10_000)
    assert await page.locator("#effort option").evaluate_all("os => os.map(o => o.value)") == [
        "", "low", "high"]
    assert await page.locator("#code-execution").is_checked()
    polls = len(asked)
    assert polls >= 2  # the first read, then at least one more
    await asyncio.sleep(4.5)  # longer than the next wait (4 s) would be
    assert len(asked) == polls


async def test_no_option_shows_when_neither_server_nor_model_allows_it(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.models["claude-sonnet-5-5"] = capabilities(effort=None)
    server = await start_server(fake=fake_anthropic, model="claude-sonnet-5-5")
    await models_known(server.url, "claude-sonnet-5-5")
    await page.goto(server.url)
    sent = post_bodies(page)
    await page.locator(".options summary").click()
    await expect(page.locator("#thinking-option")).to_be_visible()
    for name in ("web-search", "web-fetch", "code-execution", "tool-search", "effort"):
        await expect(page.locator(f"#{name}-option")).to_be_hidden()
    await ask(page, "Plain")
    await wait_status(last_reply(page), "done")
    assert not {"web_fetch", "code_execution", "tool_search", "effort", "container"} & set(sent[0])


async def test_screenshots_of_every_kind(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(blocks=(
        Compaction(SUMMARY),
        ServerToolUse("srvtoolu_f1", {"url": PAGE_URL}, name="web_fetch"),
        WebFetchResult("srvtoolu_f1", PAGE_URL, title="SSE guide"),
        McpToolUse("mcptoolu_1", "get_weather", "weather", {"city": "Paris"}),
        McpToolResult("mcptoolu_1", "Sunny, 20 °C"),
        *code_run_reply().blocks[:-1],
        UnknownBlock(),
        Text(["Everything ran: the command, the edit and the code."]),
    ), container=CONTAINER))
    server = await start_server(
        fake=fake_anthropic, web_fetch=2, code_execution=True, compaction=True,
        mcp_servers=(McpServer("weather", "https://mcp.example.com/sse"),))
    await open_with_options(page, server.url, "web-fetch", "code-execution")
    await page.locator(".options summary").click()
    await ask(page, "Show me everything")
    reply = last_reply(page)
    await wait_status(reply, "done")
    await reply.locator(".code-run").first.locator("summary").click()
    await save_screenshot(page, "chat-server-tools.png")
    await reply.locator(".compaction summary").click()
    await reply.locator(".compaction").scroll_into_view_if_needed()
    await save_screenshot(page, "chat-server-tools-top.png")
    await page.set_viewport_size(PHONE)
    await assert_no_horizontal_scroll(page)
    await save_screenshot(page, "chat-server-tools-phone.png")
    await page.locator(".options summary").click()
    await assert_no_horizontal_scroll(page)
    await save_screenshot(page, "chat-server-options-phone.png")
    await page.set_viewport_size(DESKTOP)
