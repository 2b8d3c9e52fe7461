"""`thinking` and `web_search` on both routes: refused with a clear 400 when the operator
does not allow them or a value is out of bounds (never clamped), and nothing starts;
accepted values reach the upstream (test_claude_events.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply

NO_THINKING = 'Thinking is turned off on this server; send thinking "off" or leave it out.'
THINKING_SHAPE = 'thinking must be "off", "adaptive" or a budget of tokens.'
BUDGET_RANGE = "A thinking budget must be from 1024 to 4096 tokens."
BUDGET_VS_MAX = ("A thinking budget must be less than max_tokens (2048), which counts the "
                 "thinking too: raise max_tokens or lower the budget.")
NO_SEARCH = "Web search is not enabled on this server."
SEARCH_SHAPE = 'web_search must be "off", "on" or a number of searches.'
SEARCH_RANGE = "web_search must be from 1 to 3 searches."

# (server settings, options, the 400's message): query parameters take the same values
# as JSON strings and integers, written as text.
REFUSALS = [
    pytest.param({"max_thinking_tokens": 0}, {"thinking": "adaptive"}, NO_THINKING,
                 id="thinking-not-allowed"),
    pytest.param({"max_thinking_tokens": 0}, {"thinking": 2048}, NO_THINKING,
                 id="budget-not-allowed"),
    pytest.param({}, {"thinking": 1023}, BUDGET_RANGE, id="budget-below-api-minimum"),
    pytest.param({}, {"thinking": 4097}, BUDGET_RANGE, id="budget-above-operator-bound"),
    pytest.param({}, {"thinking": 0}, BUDGET_RANGE, id="budget-0"),
    pytest.param({}, {"thinking": 2048, "max_tokens": 2048}, BUDGET_VS_MAX,
                 id="budget-not-below-max-tokens"),
    pytest.param({}, {"thinking": "ADAPTIVE"}, THINKING_SHAPE, id="thinking-case"),
    pytest.param({}, {"thinking": "on"}, THINKING_SHAPE, id="thinking-on"),
    pytest.param({}, {"thinking": ""}, THINKING_SHAPE, id="thinking-empty"),
    pytest.param({}, {"thinking": "-1"}, THINKING_SHAPE, id="thinking-negative-text"),
    pytest.param({"web_search": 0}, {"web_search": "on"}, NO_SEARCH, id="search-not-allowed"),
    pytest.param({"web_search": 0}, {"web_search": 1}, NO_SEARCH, id="uses-not-allowed"),
    pytest.param({}, {"web_search": 4}, SEARCH_RANGE, id="uses-above-operator-bound"),
    pytest.param({}, {"web_search": 0}, SEARCH_RANGE, id="uses-0"),
    pytest.param({}, {"web_search": "yes"}, SEARCH_SHAPE, id="search-yes"),
    pytest.param({}, {"web_search": ""}, SEARCH_SHAPE, id="search-empty"),
]
# JSON only: values a query string cannot even express.
JSON_REFUSALS = [
    pytest.param({"thinking": 2048.0}, THINKING_SHAPE, id="budget-float"),
    pytest.param({"thinking": True}, THINKING_SHAPE, id="thinking-true"),
    pytest.param({"thinking": "2048"}, THINKING_SHAPE, id="budget-as-string"),
    pytest.param({"thinking": {"type": "adaptive"}}, THINKING_SHAPE, id="thinking-api-shape"),
    pytest.param({"web_search": True}, SEARCH_SHAPE, id="search-true"),
    pytest.param({"web_search": [1]}, SEARCH_SHAPE, id="search-list"),
    pytest.param({"web_search": "2"}, SEARCH_SHAPE, id="uses-as-string"),
]


async def _server(start_server: StartServer, fake: FakeAnthropic,
                  settings: dict[str, Any]) -> RunningServer:
    defaults = {"max_tokens": 16000, "max_thinking_tokens": 4096, "web_search": 3}
    return await start_server(fake=fake, **(defaults | settings))


async def _assert_refused(response: aiohttp.ClientResponse, message: str) -> None:
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {
        "error": {"type": "invalid_request_error", "message": message}
    }


async def _assert_nothing_started(server: RunningServer, fake: FakeAnthropic) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/healthz"
    ) as response:
        health = await response.json()
    assert (health["status"], health["active_streams"]) == ("ok", 0)
    assert fake.request_count == 0


@pytest.mark.parametrize(("settings", "options", "message"), REFUSALS)
async def test_refused_in_the_query(
    start_server: StartServer, fake_anthropic: FakeAnthropic, settings: dict[str, Any],
    options: dict[str, Any], message: str,
) -> None:
    server = await _server(start_server, fake_anthropic, settings)
    query = "".join(f"&{k}={quote(str(v))}" for k, v in options.items())
    async with aiohttp.ClientSession() as session, session.get(
        f"{server.url}/api/sse?message=hi{query}"
    ) as response:
        await _assert_refused(response, message)
    await _assert_nothing_started(server, fake_anthropic)


@pytest.mark.parametrize(("settings", "options", "message"), [
    *REFUSALS, *(pytest.param({}, *p.values, id=p.id) for p in JSON_REFUSALS),
])
async def test_refused_in_the_body(
    start_server: StartServer, fake_anthropic: FakeAnthropic, settings: dict[str, Any],
    options: dict[str, Any], message: str,
) -> None:
    server = await _server(start_server, fake_anthropic, settings)
    body = {"messages": [{"role": "user", "content": "hi"}], **options}
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", data=json.dumps(body),
        headers={"Content-Type": "application/json"},
    ) as response:
        await _assert_refused(response, message)
    await _assert_nothing_started(server, fake_anthropic)


@pytest.mark.parametrize("options", [
    {"thinking": "off", "web_search": "off"},
    {"thinking": 1024, "max_tokens": 1025},
    {"thinking": 4096, "web_search": 3},
    {"thinking": None, "web_search": None},
])
async def test_the_edges_of_the_bounds_are_accepted(
    start_server: StartServer, fake_anthropic: FakeAnthropic, options: dict[str, Any]
) -> None:
    """The refusals are not over-eager, and "off" needs no permission."""
    server = await _server(start_server, fake_anthropic, {"max_thinking_tokens": 4096})
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    body = {"messages": [{"role": "user", "content": "hi"}], **options}
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/streams", json=body) as response:
            assert response.status == 201, await response.text()
            url = (await response.json())["url"]
        async with session.get(server.url + url) as response:  # its first reader: upstream
            assert response.status == 200
            await response.read()
    await fake_anthropic.wait_requests(1)


async def test_off_is_accepted_where_nothing_is_allowed(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, max_thinking_tokens=0, web_search=0)
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    async with aiohttp.ClientSession() as session, session.get(
        f"{server.url}/api/sse?message=hi&thinking=off&web_search=off"
    ) as response:
        assert response.status == 200
        await response.read()
    assert fake_anthropic.requests[0].thinking == {"type": "disabled"}
    assert "tools" not in fake_anthropic.requests[0].body
