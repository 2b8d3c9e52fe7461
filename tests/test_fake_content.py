"""The fake's content blocks, refusals, request checks and prompt cache, against the SDK.

Why: the end-to-end tests of thinking, web search, citations, pause_turn and caching
trust the fake to send what the API sends and to check what the API checks. Each shape is
validated here against the installed SDK's own types (every field declared, none
unknown), and the SDK's accumulator rebuilds the message the fake says it sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pydantic
import pytest
from anthropic.types import MessageParam, RawMessageStreamEvent

from tests.support.fake_anthropic import (
    MESSAGES_PATH,
    FakeAnthropic,
    RedactedThinking,
    Reply,
    ServerToolUse,
    Text,
    Thinking,
    UnknownBlock,
    UnknownEvent,
    WebSearchResult,
    count_output_tokens,
    running_fake_anthropic,
    web_citation,
    web_result,
)

MODEL = "claude-sonnet-5-5"
PROMPT: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Search, please."}]
EVENTS: pydantic.TypeAdapter[RawMessageStreamEvent] = pydantic.TypeAdapter(RawMessageStreamEvent)
MESSAGE_PARAM: pydantic.TypeAdapter[MessageParam] = pydantic.TypeAdapter(MessageParam)
SOURCE = "https://html.spec.whatwg.org/multipage/server-sent-events.html"
EVERY_BLOCK = (
    Thinking(["I should ", "search."]),
    RedactedThinking(),
    Thinking([]),  # display omitted: only a signature
    ServerToolUse("srvtoolu_01", {"query": "SSE spec ✓"}),
    WebSearchResult("srvtoolu_01", [web_result("HTML Standard", SOURCE, "2 days ago"),
                                    web_result("MDN", "https://developer.mozilla.org/")]),
    Text(["SSE is ", "in HTML."], citations=[web_citation(SOURCE, "HTML Standard", "It is.")]),
    ServerToolUse("srvtoolu_02", {"query": "more"}),
    WebSearchResult("srvtoolu_02", error_code="max_uses_exceeded"),
)
REFUSAL = {"type": "refusal", "category": "cyber", "explanation": "Not this one."}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with running_fake_anthropic() as server:
        yield server


async def _raw_events(fake: FakeAnthropic, body: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session, session.post(
        fake.base_url + MESSAGES_PATH, json=body, headers=headers
    ) as response:
        assert response.status == 200, await response.text()
        text = (await response.read()).decode()
    events = []
    for frame in text.split("\n\n")[:-1]:
        name, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        events.append(event)
    return events


def _assert_declared(model: pydantic.BaseModel) -> None:
    """Every field the fake sent is one the SDK's type declares, all the way down."""
    assert not model.model_extra, f"{type(model).__name__} has unknown fields {model.model_extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, pydantic.BaseModel):
                _assert_declared(item)


def _deep(value: object) -> object:
    """A validated param with its lazy iterables (the SDK's `Iterable[...]`) read. A block
    may validate as the response type the SDK also accepts, a model: as sent, then."""
    if isinstance(value, pydantic.BaseModel):
        _assert_declared(value)
        return _deep(value.model_dump(exclude_unset=True))
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return [_deep(v) for v in value]  # type: ignore[attr-defined]


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def assert_message_param(message: dict[str, Any]) -> None:
    """`message` is a MessageParam the SDK accepts, with no field it would drop."""
    assert _deep(MESSAGE_PARAM.validate_python(message)) == message


async def test_every_block_validates_against_the_sdk_types(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(blocks=EVERY_BLOCK, stop_reason="refusal", stop_details=REFUSAL))
    events = await _raw_events(fake, {"model": MODEL, "max_tokens": 2048, "messages": PROMPT,
                                      "stream": True})
    for raw in events:
        if raw["type"] != "ping":
            _assert_declared(EVENTS.validate_python(raw))
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "redacted_thinking", "thinking", "server_tool_use",
                      "web_search_tool_result", "text", "server_tool_use",
                      "web_search_tool_result"]
    deltas = [(e["index"], e["delta"]["type"]) for e in events
              if e["type"] == "content_block_delta"]
    assert deltas == [
        (0, "thinking_delta"), (0, "thinking_delta"), (0, "signature_delta"),
        (2, "signature_delta"),
        (3, "input_json_delta"), (3, "input_json_delta"), (3, "input_json_delta"),
        (5, "citations_delta"), (5, "text_delta"), (5, "text_delta"),
        (6, "input_json_delta"), (6, "input_json_delta"), (6, "input_json_delta"),
    ]
    final = events[-2]
    assert final["delta"]["stop_details"] == REFUSAL
    assert final["usage"]["server_tool_use"] == {"web_search_requests": 2,
                                                 "web_fetch_requests": 0}
    assert final["usage"]["output_tokens_details"] == {
        "thinking_tokens": count_output_tokens(["I should ", "search."])
    }
    sent = fake.requests[0].sent
    assert [kind for _, kind in sent] == [kind for _, kind in deltas]
    assert [at for at, _ in sent] == sorted(at for at, _ in sent)


async def test_the_sdk_rebuilds_what_the_fake_says_it_sent(fake: FakeAnthropic) -> None:
    reply = Reply(blocks=EVERY_BLOCK, stop_reason="refusal", stop_details=REFUSAL)
    fake.enqueue(reply, reply)
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        async with sdk.messages.stream(model=MODEL, max_tokens=2048, messages=PROMPT) as s:
            streamed = await s.get_final_message()
        whole = await sdk.messages.create(model=MODEL, max_tokens=2048, messages=PROMPT)
    for message in (streamed, whole):
        _assert_declared(message)
        assert [b.model_dump(exclude_none=True) for b in message.content] == _no_nulls(
            reply.content()
        )
        assert message.stop_reason == "refusal"
        assert message.stop_details is not None
        assert message.stop_details.model_dump() == REFUSAL
    # What a client sends back to continue a paused turn is what the API accepts.
    assert_message_param({"role": "assistant", "content": reply.content()})


async def test_unknown_shapes_are_unknown_to_the_sdk(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(blocks=(Text(["a", "b"], unknown_delta_after=1), UnknownEvent(),
                               UnknownBlock(), Text(["c"]))))
    events = await _raw_events(fake, {"model": MODEL, "max_tokens": 64, "messages": PROMPT,
                                      "stream": True})
    unknown = [e for e in events if e["type"] == "future_event"
               or e.get("content_block", {}).get("type") == "future_block"
               or e.get("delta", {}).get("type") == "future_delta"]
    assert len(unknown) == 4  # the unknown block brings an unknown delta of its own
    for raw in unknown:
        with pytest.raises(pydantic.ValidationError):
            EVENTS.validate_python(raw)


THINKING_REFUSALS = [
    pytest.param({"type": "enabled", "budget_tokens": 1023}, 4096,
                 "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                 id="budget-below-1024"),
    pytest.param({"type": "enabled", "budget_tokens": 2048}, 2048,
                 "`max_tokens` must be greater than `thinking.budget_tokens`",
                 id="budget-not-below-max-tokens"),
    pytest.param({"type": "adaptive", "display": "full"}, 64,
                 "thinking.display: Input should be 'summarized' or 'omitted'",
                 id="bad-display"),
    pytest.param({"type": "sometimes"}, 64,
                 "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'",
                 id="bad-type"),
]


@pytest.mark.parametrize(("thinking", "max_tokens", "message"), THINKING_REFUSALS)
async def test_thinking_the_api_would_refuse_is_a_400(
    fake: FakeAnthropic, thinking: dict[str, Any], max_tokens: int, message: str
) -> None:
    fake.enqueue(Reply(chunks=["unused"]))
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        with pytest.raises(anthropic.BadRequestError) as caught:
            # Sent as extra_body: the SDK's types would not let a wrong one through.
            await sdk.messages.create(model=MODEL, max_tokens=max_tokens, messages=PROMPT,
                                      extra_body={"thinking": thinking})
    assert caught.value.api_message == message
    assert fake.pending == 1
    assert fake.requests[0].thinking == thinking


async def test_requests_are_counted_and_their_cache_and_thinking_recorded(
    fake: FakeAnthropic,
) -> None:
    fake.max_recorded = 1
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        await sdk.messages.create(model=MODEL, max_tokens=2048, messages=PROMPT)
        await sdk.messages.create(
            model=MODEL, max_tokens=2048, messages=PROMPT,
            thinking={"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
            cache_control={"type": "ephemeral", "ttl": "1h"},
        )
    assert fake.request_count == 2
    assert len(fake.requests) == 1
    assert fake.requests[0].thinking == {"type": "enabled", "budget_tokens": 1024,
                                         "display": "summarized"}
    assert fake.requests[0].cache_control == {"type": "ephemeral", "ttl": "1h"}


async def test_the_prompt_cache_serves_a_growing_conversation_its_prefix(
    fake: FakeAnthropic,
) -> None:
    """Automatic caching (top-level cache_control): each turn writes its whole prompt
    and reads the prompt of the turn before, which its history repeats."""
    system = "You are a careful assistant. " * 200  # above the 1,024-token minimum
    turns: list[anthropic.types.MessageParam] = [{"role": "user", "content": "one"}]
    seen = []
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        for number in range(3):
            async with sdk.messages.stream(
                model=MODEL, max_tokens=64, system=system, messages=turns,
                cache_control={"type": "ephemeral"},
            ) as stream:
                reply = await stream.get_final_message()
            seen.append(reply.usage)
            turns += [{"role": "assistant", "content": "Hello from the fake Claude."},
                      {"role": "user", "content": f"turn {number + 2}"}]
    caches = [r.cache for r in fake.requests]
    assert None not in caches
    first, second, third = (c for c in caches if c is not None)
    assert (first.read, second.read, third.read) == (0, first.write,
                                                     first.write + second.write)
    assert first.write > 1024
    for usage, cache in zip(seen, (first, second, third), strict=True):
        assert usage.cache_read_input_tokens == cache.read
        assert usage.cache_creation_input_tokens == cache.write
        assert usage.input_tokens == cache.uncached == 0  # the marker is on the last block
        assert usage.cache_creation is not None
        assert usage.cache_creation.ephemeral_5m_input_tokens == cache.write
    # Below the minimum, or without a marker, nothing is cached.
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        short = await sdk.messages.create(model=MODEL, max_tokens=64, messages=PROMPT,
                                          cache_control={"type": "ephemeral"})
        plain = await sdk.messages.create(model=MODEL, max_tokens=64, system=system,
                                          messages=turns)
    assert fake.requests[-2].cache is None
    assert fake.requests[-1].cache is None
    assert (short.usage.input_tokens, short.usage.cache_read_input_tokens) == (12, 0)
    assert (plain.usage.input_tokens, plain.usage.cache_creation_input_tokens) == (12, 0)
