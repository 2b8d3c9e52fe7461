"""Token budgets over HTTP, against the fake Anthropic API (docs/operations.md, "Users"):
200 starts at once by one user whose budget is ten replies' worth never take the tokens
counted past the budget by more than one max_tokens; then every start is 429 with
Retry-After until the window ends, and /api/usage agrees with the fake's own count. In
memory and, across two servers, on one Redis."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import pytest

from sseserver.budgets import CACHE_READ_DIVISOR

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic
from .support.http_client import request as http
from .support.jwt_issuer import AUDIENCE, SECRET, bearer, claims, hs256
from .support.metrics_text import parse, value

MAX_TOKENS = 50
ALICE = bearer(hs256(claims("alice")))
CONSOLE = bearer(hs256(claims("console", scope="sse:read_any")))
WINDOW = 3600.0


def _counted(usage: dict[str, Any]) -> int:
    """The rule of budgets.py, applied to what the fake itself sent."""
    return int(usage["input_tokens"] + usage["cache_creation_input_tokens"]
               + usage["output_tokens"]
               + math.ceil(usage["cache_read_input_tokens"] / CACHE_READ_DIVISOR))


async def _reply(server: RunningServer, who: dict[str, str]) -> int:
    """One start that reads its stream to the end: 200, or the refusal's status."""
    status, _headers, body = await http(
        "GET", f"{server.url}/api/sse?message=hi&max_tokens={MAX_TOKENS}", headers=who)
    if status == 200:
        assert body.rstrip().endswith(b'data: "[DONE]"'), body[-200:]
    return status


async def _settled(server: RunningServer, who: dict[str, str]) -> dict[str, Any]:
    """/api/usage once no reply holds anything back (each settles right after its end)."""
    deadline = time.monotonic() + 5
    while True:
        status, headers, body = await http("GET", server.url + "/api/usage", headers=who)
        assert status == 200, body
        assert headers["Cache-Control"] == "no-store"
        usage: dict[str, Any] = json.loads(body)
        if usage["reserved"] == 0:
            return usage
        assert time.monotonic() < deadline, usage
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend_name", ["memory", "redis", "cluster"])
async def test_concurrent_starts_stay_within_one_max_tokens_of_the_budget(
    start_server: StartServer, fake_anthropic: FakeAnthropic, request: pytest.FixtureRequest,
    backend_name: str,
) -> None:
    per_reply = _counted_reply = 12 + 7  # the fake's input, and its default reply's output
    budget = 10 * per_reply
    options: dict[str, Any] = {
        "jwt_secret_file": SECRET, "jwt_audience": AUDIENCE, "budget_tokens": budget,
        "budget_window": WINDOW, "max_streams_per_client": 0, "prompt_cache": "off",
    }
    if backend_name != "memory":
        redis_url = request.getfixturevalue(
            "redis_url" if backend_name == "redis" else "redis_cluster_url")
        servers = [await start_server(fake=fake_anthropic, redis_url=redis_url, **options)
                   for _ in range(2)]
    else:
        servers = [await start_server(fake=fake_anthropic, **options)]

    statuses = await asyncio.gather(*(
        _reply(servers[i % len(servers)], ALICE) for i in range(200)
    ))
    admitted = statuses.count(200)
    assert admitted >= 1
    assert set(statuses) == {200, 429}
    # Then one at a time until the budget refuses.
    while await _reply(servers[admitted % len(servers)], ALICE) == 200:
        admitted += 1
        assert admitted <= 20, "the budget never refused"
    counted = sum(_counted(usage) for usage in fake_anthropic.usages)
    assert _counted_reply == _counted(fake_anthropic.usages[0])
    print(f"{backend_name}: {admitted} replies admitted, {counted} tokens counted "
          f"against a budget of {budget} (max_tokens {MAX_TOKENS})")
    assert len(fake_anthropic.usages) == admitted
    assert budget - 3 * per_reply <= counted <= budget + MAX_TOKENS

    # Past the budget: 429 with the window's end, a body that says so, nothing started.
    status, headers, body = await http(
        "POST", servers[-1].url + "/api/streams", headers=ALICE,
        json_body={"messages": [{"role": "user", "content": "hi"}]})
    assert status == 429
    error = json.loads(body)["error"]
    assert error["type"] == "budget_exceeded"
    assert f"budget of {budget} tokens" in error["message"]
    resets_in = int(headers["Retry-After"])
    assert 0 < resets_in <= WINDOW
    assert len(fake_anthropic.usages) == admitted

    for server in servers:  # every server of the fleet tells the same
        usage = await _settled(server, ALICE)
        assert usage["user"] == "alice"
        assert usage["budget"] == budget
        assert usage["counted"] == counted
        assert usage["tokens"] == {
            "input": sum(u["input_tokens"] for u in fake_anthropic.usages),
            "cache_write": sum(u["cache_creation_input_tokens"] for u in fake_anthropic.usages),
            "cache_read": sum(u["cache_read_input_tokens"] for u in fake_anthropic.usages),
            "output": sum(u["output_tokens"] for u in fake_anthropic.usages),
        }
        assert usage["remaining"] == max(0, budget - counted)
        assert usage["window"]["end"] - usage["window"]["start"] == WINDOW
        assert abs(usage["window"]["resets_in"] - resets_in) <= 2

    # /metrics: refusals and tokens by kind, no user in any label.
    refused = 0.0
    charged = 0.0
    for server in servers:
        status, _, text = await http("GET", server.url + "/metrics", headers=CONSOLE)
        assert status == 200
        assert b"alice" not in text
        samples = parse(text.decode())
        refused += value(samples, "sseserver_refused_total", reason="budget")
        charged += value(samples, "sseserver_budget_counted_tokens_total")
    assert refused == statuses.count(429) + 2
    assert charged == counted


async def test_a_tokens_own_budget_overrides_the_default(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, jwt_secret_file=SECRET,
                                jwt_audience=AUDIENCE, budget_tokens=100_000)
    small = bearer(hs256(claims("small", **{"sse:budget": 40})))
    assert await _reply(server, small) == 200
    assert await _reply(server, small) == 429
    usage = await _settled(server, small)
    assert usage["budget"] == 40
    assert usage["counted"] == _counted(fake_anthropic.usages[0])
    # Another user has the default, and their own count.
    assert await _reply(server, ALICE) == 200
    assert (await _settled(server, ALICE))["counted"] == _counted(fake_anthropic.usages[1])


async def test_usage_is_per_user_and_needs_users(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    plain = await start_server(fake=fake_anthropic)
    status, _, body = await http("GET", plain.url + "/api/usage")
    assert status == 404
    assert json.loads(body)["error"]["type"] == "not_found_error"
    users = await start_server(fake=fake_anthropic, jwt_secret_file=SECRET,
                               jwt_audience=AUDIENCE)
    usage = await _settled(users, ALICE)  # no budget: spending is counted all the same
    assert (usage["budget"], usage["remaining"], usage["counted"]) == (None, None, 0)
    assert await _reply(users, ALICE) == 200
    assert (await _settled(users, ALICE))["counted"] == _counted(fake_anthropic.usages[0])
    for method in ("POST", "DELETE"):
        status, headers, _ = await http(method, users.url + "/api/usage", headers=ALICE)
        assert status == 405
        assert headers["Allow"] == "GET,HEAD"
