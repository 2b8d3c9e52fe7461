"""Tests of the fake Anthropic server, driven by the real SDK and by a plain HTTP client.

Why: every other test trusts the fake to behave like Anthropic's API. These tests check
its wire format against the SDK's own pydantic types, and pin down what the SDK raises
for each failure, so the mapping written in ``tests/support/fake_anthropic.py`` stays true.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pydantic
import pytest
from anthropic._streaming import SSEDecoder
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from sseserver.providers.anthropic import UPSTREAM_TRANSPORT_ERRORS, transport_error
from sseserver.providers.anthropic_events import EventReader
from sseserver.providers.messages_api import MessagesAPI
from tests.support.fake_anthropic import (
    DEFAULT_API_KEY,
    MESSAGES_PATH,
    Drop,
    EndsEarly,
    FakeAnthropic,
    HttpError,
    MidStreamError,
    Reply,
    Silent,
    count_output_tokens,
    fake_anthropic,  # noqa: F401  (the fixture, used by name below)
    running_fake_anthropic,
    sse_frame,
)

MODEL = "claude-sonnet-5-5"
PROMPT: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Say hello."}]
EXPECTED_ORDER = ["message_start", "content_block_start", "ping"]
EXPECTED_TAIL = ["content_block_stop", "message_delta", "message_stop"]
EVENT_ADAPTER: pydantic.TypeAdapter[RawMessageStreamEvent] = pydantic.TypeAdapter(
    RawMessageStreamEvent
)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    """This module's own fake, so the tests do not depend on conftest.py."""
    async with running_fake_anthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The real SDK client pointed at the fake, without retries."""
    async with anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0
    ) as sdk:
        yield sdk


async def _collect_text(sdk: anthropic.AsyncAnthropic, received: list[str]) -> None:
    """Stream one reply through the SDK, appending each text delta as it arrives."""
    async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
        async for text in stream.text_stream:
            received.append(text)


async def _relay_text(
    fake: FakeAnthropic, received: list[str], *, read_timeout: float = 30.0,
    api_key: str | None = None, arrived: asyncio.Event | None = None,
) -> None:
    """Stream one reply through the relay's own request and reader, appending each text
    delta as it arrives (and setting `arrived`)."""
    api = MessagesAPI(api_key or fake.api_key, fake.base_url, max_retries=0,
                      connect_timeout=5.0, read_timeout=read_timeout)
    feed = EventReader(fast_text=True).feed
    try:
        async with api.stream({"model": MODEL, "max_tokens": 64, "messages": PROMPT}) as response:
            async for chunk in response.content.iter_any():
                received += [event for event in feed(chunk) if isinstance(event, str)]
                if received and arrived is not None:
                    arrived.set()
    finally:
        await api.close()


async def _raw_events(
    fake: FakeAnthropic, body: dict[str, Any] | None = None
) -> tuple[aiohttp.ClientResponse, list[tuple[float, str, str]]]:
    """POST with a plain HTTP client; return the response and (arrival time, event, data)."""
    payload = body or {"model": MODEL, "max_tokens": 64, "messages": PROMPT, "stream": True}
    headers = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
    events: list[tuple[float, str, str]] = []
    async with aiohttp.ClientSession() as session:
        response = await session.post(fake.base_url + MESSAGES_PATH, json=payload, headers=headers)
        async with response:
            while True:
                first = await response.content.readline()
                if not first:
                    break
                second = await response.content.readline()
                blank = await response.content.readline()
                arrived = time.monotonic()
                text = (first + second + blank).decode("utf-8")
                assert first.startswith(b"event: "), text
                assert second.startswith(b"data: "), text
                assert blank == b"\n", f"an event is exactly two lines then a blank: {text!r}"
                events.append((arrived, first[7:-1].decode(), second[6:-1].decode()))
    return response, events


def _assert_no_unknown_fields(model: pydantic.BaseModel) -> None:
    """Fail on fields the SDK's types do not declare: a typo would otherwise pass silently."""
    assert not model.model_extra, f"{type(model).__name__} has unknown fields {model.model_extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, pydantic.BaseModel):
                _assert_no_unknown_fields(item)


async def test_stream_events_validate_against_sdk_types_in_order(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(chunks=["Hel", "lo"], input_tokens=21, stop_reason="max_tokens"))
    response, events = await _raw_events(fake)

    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["request-id"] == fake.requests[0].request_id
    assert response.headers["request-id"].startswith("req_")
    names = [name for _, name, _ in events]
    assert names == [*EXPECTED_ORDER, "content_block_delta", "content_block_delta", *EXPECTED_TAIL]

    parsed = []
    for _, name, data in events:
        raw = json.loads(data)
        assert raw["type"] == name, "the SSE event name always equals data.type"
        if name == "ping":
            assert raw == {"type": "ping"}
            continue
        event = EVENT_ADAPTER.validate_python(raw)
        _assert_no_unknown_fields(event)
        parsed.append(event)

    start = parsed[0]
    assert isinstance(start, anthropic.types.RawMessageStartEvent)
    assert start.message.id.startswith("msg_")
    assert start.message.model == MODEL
    assert start.message.role == "assistant"
    assert start.message.content == []
    assert start.message.stop_reason is None
    assert start.message.stop_sequence is None
    assert start.message.usage.input_tokens == 21
    assert start.message.usage.output_tokens == 1
    assert start.message.usage.cache_creation_input_tokens == 0
    assert start.message.usage.cache_read_input_tokens == 0
    block_start = parsed[1]
    assert isinstance(block_start, anthropic.types.RawContentBlockStartEvent)
    assert block_start.index == 0
    assert block_start.content_block == anthropic.types.TextBlock(type="text", text="")
    deltas = [e for e in parsed if isinstance(e, anthropic.types.RawContentBlockDeltaEvent)]
    assert [(d.index, d.delta) for d in deltas] == [
        (0, anthropic.types.TextDelta(type="text_delta", text="Hel")),
        (0, anthropic.types.TextDelta(type="text_delta", text="lo")),
    ]
    message_delta = parsed[-2]
    assert isinstance(message_delta, anthropic.types.RawMessageDeltaEvent)
    assert message_delta.delta.stop_reason == "max_tokens"
    assert message_delta.delta.stop_sequence is None
    assert message_delta.usage.output_tokens == count_output_tokens(["Hel", "lo"])


async def test_each_delta_is_flushed_when_produced(fake: FakeAnthropic) -> None:
    delay = 0.05
    fake.enqueue(Reply(chunks=["a", "b", "c"], delay=delay))
    _, events = await _raw_events(fake)

    arrivals = {name: at for at, name, _ in events if name != "content_block_delta"}
    delta_times = [at for at, name, _ in events if name == "content_block_delta"]
    # The fake sleeps `delay` before each delta. Buffered output would arrive in one lump;
    # flushed output is spread over the sleeps (thresholds leave room for a slow reader).
    assert delta_times[0] - arrivals["message_start"] > delay * 0.5, "start waited for deltas"
    spread = delta_times[-1] - delta_times[0]
    assert spread > 2 * delay * 0.75, f"deltas arrived bunched up within {spread:.3f}s"
    assert arrivals["message_stop"] - delta_times[-1] < delay



async def test_a_stamped_reply_sends_when_each_delta_was_written(fake: FakeAnthropic) -> None:
    """`make bench-redis` subtracts these stamps from arrival times: each must be the
    monotonic clock (the one `time.monotonic()` reads) at the write, after the delay."""
    delay = 0.05
    fake.enqueue(Reply(chunks=["a", "b", "c"], delay=delay, stamp=True))
    before = time.monotonic_ns()
    _, events = await _raw_events(fake)
    deltas = [(at, json.loads(data)["delta"]["text"])
              for at, name, data in events if name == "content_block_delta"]
    assert [text[-1] for _, text in deltas] == [" ", " ", " "]
    stamps = [int(text) for _, text in deltas]
    assert before + delay * 1e9 * 0.5 < stamps[0]
    assert all(later - earlier > delay * 1e9 * 0.5
               for earlier, later in itertools.pairwise(stamps))
    assert all(stamp / 1e9 <= at for stamp, (at, _) in zip(stamps, deltas, strict=True))

async def test_sdk_reassembles_exact_text_and_usage(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    chunks = [
        "line one\n",
        "crlf\r\n",
        "lone cr\r and tab\t",
        "emoji 😀👍🏽 ",
        "中文字符，测试 ",
        "sep\u2028ara\u2029tors ",
        "data: not an event\n\nevent: error\n",
        "x" * 20_000,
        '"quoted" \\ back',
    ]
    fake.enqueue(Reply(chunks=chunks, input_tokens=33))
    system = "You are terse."
    async with client.messages.stream(
        model=MODEL, max_tokens=512, system=system, messages=PROMPT
    ) as stream:
        received = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert received == chunks
    assert final.content[0].type == "text"
    assert final.content[0].text == "".join(chunks)
    assert final.model == MODEL
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 33
    assert final.usage.output_tokens == count_output_tokens(chunks) > 5000

    record = fake.requests[0]
    assert record.method == "POST"
    assert record.path == MESSAGES_PATH
    assert record.body["model"] == MODEL
    assert record.body["max_tokens"] == 512
    assert record.body["system"] == system
    assert record.body["messages"] == PROMPT
    assert record.body["stream"] is True
    assert record.api_key == fake.api_key
    # The installed SDK sends the key as a bearer token, not x-api-key.
    assert record.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert "anthropic-version" in record.headers
    assert record.status == 200
    assert record.deltas_sent == len(chunks)
    assert record.completed_at is not None


async def test_default_reply_serves_when_queue_is_empty(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.default_reply = Reply(chunks=["de", "fault"], stop_reason="stop_sequence")
    fake.enqueue(Reply(chunks=["queued"]))
    first: list[str] = []
    second: list[str] = []
    await _collect_text(client, first)
    await _collect_text(client, second)
    assert (first, second) == (["queued"], ["de", "fault"])
    assert fake.pending == 0
    assert [r.behaviour for r in fake.requests] == [Reply(chunks=["queued"]), fake.default_reply]


async def test_non_streaming_request_gets_a_whole_message(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(chunks=["whole ", "reply"], input_tokens=7))
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT)
    assert isinstance(message, Message)
    _assert_no_unknown_fields(message)
    assert message.content[0].type == "text"
    assert message.content[0].text == "whole reply"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert message.id.startswith("msg_")
    assert "stream" not in fake.requests[0].body


@pytest.mark.parametrize(
    ("status", "error_type", "error_class"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.OverloadedError),
    ],
)
async def test_http_errors_map_to_sdk_exceptions(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    status: int,
    error_type: str,
    error_class: type[anthropic.APIStatusError],
) -> None:
    fake.enqueue(HttpError(status, error_type, retry_after=1 if status == 429 else None))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await _collect_text(client, received)

    error = caught.value
    record = fake.requests[0]
    assert type(error) is error_class
    assert error.status_code == status
    assert error.type == error_type
    assert error.request_id == record.request_id
    assert error.api_message
    ErrorResponse.model_validate(error.body)
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": error.api_message},
        "request_id": record.request_id,
    }
    assert error.response.headers.get("retry-after") == ("1" if status == 429 else None)
    assert received == []
    assert len(fake.requests) == 1


async def test_sdk_retries_a_429_with_retry_after_zero(fake: FakeAnthropic) -> None:
    fake.enqueue(HttpError(429, "rate_limit_error", retry_after=0), Reply(chunks=["ok"]))
    received: list[str] = []
    async with anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=1
    ) as sdk:
        await _collect_text(sdk, received)
    assert received == ["ok"]
    assert len(fake.requests) == 2
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_sdk_honours_retry_after_ms_and_x_should_retry(fake: FakeAnthropic) -> None:
    fake.enqueue(
        HttpError(529, "overloaded_error", retry_after_ms=50),
        Reply(chunks=["second"]),
        HttpError(500, "api_error", should_retry=False),
    )
    received: list[str] = []
    async with anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=1
    ) as sdk:
        await _collect_text(sdk, received)
        gap = fake.requests[1].opened_at - fake.requests[0].opened_at
        # The SDK's own backoff would wait at least 0.375 s.
        assert 0.04 < gap < 0.35
        with pytest.raises(anthropic.InternalServerError):
            await _collect_text(sdk, received)
    assert received == ["second"]
    assert len(fake.requests) == 3, "x-should-retry: false must stop the retry"


async def test_mid_stream_error_raises_after_earlier_text(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(MidStreamError(chunks=["partial ", "answer"]))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await _collect_text(client, received)

    error = caught.value
    assert received == ["partial ", "answer"]
    assert type(error) is anthropic.APIStatusError
    assert error.status_code == 200
    assert error.type == "overloaded_error"
    assert error.api_message == "Overloaded"
    assert error.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    ErrorResponse.model_validate(error.body)
    assert error.request_id == fake.requests[0].request_id
    assert len(fake.requests) == 1


async def test_mid_stream_error_wire_format(fake: FakeAnthropic) -> None:
    fake.enqueue(MidStreamError(chunks=["x"], error_type="api_error", message="boom"))
    _, events = await _raw_events(fake)
    names = [name for _, name, _ in events]
    assert names == [*EXPECTED_ORDER, "content_block_delta", "error"]
    error = json.loads(events[-1][2])
    assert error == {"type": "error", "error": {"type": "api_error", "message": "boom"}}


async def test_a_reply_that_ends_early_is_a_clean_end_the_sdk_raises_nothing_for(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    """The body ends with its terminating chunk after the deltas: no error for the SDK to
    raise, and no message_stop, which only the relay's own check notices."""
    fake.enqueue(EndsEarly(chunks=["cut ", "short"]))
    response, events = await _raw_events(fake)
    assert response.status == 200
    assert [name for _, name, _ in events] == [*EXPECTED_ORDER, *["content_block_delta"] * 2]
    fake.enqueue(EndsEarly(chunks=["again"]))
    received: list[str] = []
    await _collect_text(client, received)  # the SDK sees a stream that simply ended
    assert received == ["again"]
    assert fake.requests[1].completed_at is not None


async def test_a_drop_is_what_the_relay_reports_as_a_lost_connection(
    fake: FakeAnthropic,
) -> None:
    """The relay catches a dropped stream and calls it a lost connection, and the text
    before the drop was delivered."""
    fake.enqueue(Drop(chunks=["cut ", "off"]))
    received: list[str] = []
    with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
        await _relay_text(fake, received)

    error = transport_error(caught.value)
    assert (error.type, error.message) == (
        "upstream_unavailable", "The connection to Claude was lost."
    )
    assert received == ["cut ", "off"]
    record = fake.requests[0]
    await fake.wait_closed(0, timeout=1.0)
    assert record.completed_at is None
    assert record.deltas_sent == 2


async def test_drop_of_non_streamed_request_is_a_connection_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Drop())
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT)


async def test_silent_stream_close_is_detected_within_100ms(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Silent(chunks=["first"]))
    received: list[str] = []
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
        async for text in stream.text_stream:
            received.append(text)
            break
        await asyncio.sleep(0.05)
        record = fake.requests[0]
        assert record.closed_at is None, "the fake must hold the connection open while silent"
        left_at = time.monotonic()
    closed_at = await fake.wait_closed(timeout=1.0)

    latency_ms = (closed_at - left_at) * 1000
    print(f"close detected {latency_ms:.2f} ms after the SDK stream closed")
    assert received == ["first"]
    assert 0 <= latency_ms < 100
    assert record.completed_at is None


async def test_silent_stream_hits_the_relay_s_read_timeout(fake: FakeAnthropic) -> None:
    fake.enqueue(Silent(chunks=["only"]))
    received: list[str] = []
    with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
        await _relay_text(fake, received, read_timeout=0.2)
    error = transport_error(caught.value)
    assert (error.type, error.message) == ("upstream_timeout", "Claude did not answer in time.")
    assert received == ["only"]
    await fake.wait_closed(0, timeout=1.0)


async def test_client_leaving_mid_reply_ends_the_handler_cleanly(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake.enqueue(Reply(chunks=[f"t{i} " for i in range(40)], delay=0.01))
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
        async for _ in stream.text_stream:
            if fake.requests[0].deltas_sent >= 2:
                break
    await fake.wait_closed(0, timeout=1.0)
    await asyncio.sleep(0.05)
    record = fake.requests[0]
    assert record.completed_at is None
    assert 2 <= record.deltas_sent < 40
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_wrong_api_key_is_401_and_keeps_the_queue(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(chunks=["kept"]))
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-api03-wrong", base_url=fake.base_url, max_retries=0
    ) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await _collect_text(wrong, [])
    assert caught.value.type == "authentication_error"
    assert caught.value.status_code == 401
    assert caught.value.api_message == "invalid x-api-key"
    assert fake.requests[0].api_key == "sk-ant-api03-wrong"
    assert fake.requests[0].behaviour is None
    assert fake.pending == 1

    received: list[str] = []
    async with anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0
    ) as right:
        await _collect_text(right, received)
    assert received == ["kept"]


async def _post_raw(
    fake: FakeAnthropic, path: str, headers: dict[str, str], data: bytes
) -> tuple[int, str, dict[str, Any]]:
    """POST raw bytes; return status, request-id header and the JSON body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, data=data, headers=headers) as response,
    ):
        assert response.content_type == "application/json"
        return response.status, response.headers["request-id"], await response.json()


GOOD_HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
GOOD_BODY = {"model": MODEL, "max_tokens": 5, "messages": PROMPT, "stream": True}


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "error_type", "message"),
    [
        (
            "/v1/messages",
            {"anthropic-version": "2023-06-01"},
            GOOD_BODY,
            401,
            "authentication_error",
            "x-api-key header is required",
        ),
        (
            "/v1/messages",
            {"x-api-key": DEFAULT_API_KEY},
            GOOD_BODY,
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        ),
        (
            "/v1/messages",
            GOOD_HEADERS,
            {"max_tokens": 5, "messages": PROMPT},
            400,
            "invalid_request_error",
            "model: Field required",
        ),
        (
            "/v1/messages",
            GOOD_HEADERS,
            {"model": MODEL, "messages": PROMPT},
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
        (
            "/v1/messages",
            GOOD_HEADERS,
            {"model": MODEL, "max_tokens": 5},
            400,
            "invalid_request_error",
            "messages: Field required",
        ),
        (
            "/v1/messages",
            GOOD_HEADERS,
            None,
            400,
            "invalid_request_error",
            "There was an issue with the request body",
        ),
        ("/v1/complete", GOOD_HEADERS, GOOD_BODY, 404, "not_found_error", "Not Found"),
    ],
)
async def test_requests_anthropic_refuses(
    fake: FakeAnthropic,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    status: int,
    error_type: str,
    message: str,
) -> None:
    data = b"{not json" if body is None else json.dumps(body).encode()
    fake.enqueue(Reply(chunks=["unused"]))
    got_status, request_id, error = await _post_raw(
        fake, path, {**headers, "content-type": "application/json"}, data
    )
    assert got_status == status
    assert error == {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    ErrorResponse.model_validate(error)
    assert request_id.startswith("req_")
    assert fake.pending == 1, "a refused request must not consume a queued behaviour"
    assert len(fake.requests) == (0 if path != MESSAGES_PATH else 1)


async def test_wait_helpers(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(TimeoutError, match="0 of 1"):
        await fake.wait_requests(1, timeout=0.02)
    fake.enqueue(Silent())
    waiter = asyncio.create_task(fake.wait_closed(0, timeout=2.0))
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT):
        await fake.wait_requests(1)
        with pytest.raises(TimeoutError, match="still open"):
            await fake.wait_closed(timeout=0.02)
        assert not waiter.done()
    assert await waiter == fake.requests[0].closed_at


async def test_shutdown_cuts_a_silent_stream_promptly() -> None:
    received: list[str] = []
    first_text = asyncio.Event()
    started = time.monotonic()
    async with running_fake_anthropic(api_key="sk-ant-api03-other") as server:
        server.enqueue(Silent(chunks=["held"]))
        task = asyncio.create_task(_relay_text(
            server, received, api_key="sk-ant-api03-other", arrived=first_text))
        await asyncio.wait_for(first_text.wait(), 2.0)
    with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
        await task
    assert transport_error(caught.value).type == "upstream_unavailable"
    assert server.requests[0].closed_at is not None
    assert time.monotonic() - started < 1.0


async def test_the_module_fixture_serves(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    assert fake_anthropic.base_url == f"http://127.0.0.1:{fake_anthropic.port}"
    assert fake_anthropic.api_key == DEFAULT_API_KEY
    received: list[str] = []
    async with anthropic.AsyncAnthropic(
        api_key=DEFAULT_API_KEY, base_url=fake_anthropic.base_url, max_retries=0
    ) as sdk:
        await _collect_text(sdk, received)
    assert "".join(received) == "".join(fake_anthropic.default_reply.chunks)


async def test_runs_as_its_own_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.fake_anthropic",
        "--port",
        "0",
        "--chunks",
        "3",
        "--chunk-text",
        "hi ",
        "--delay-ms",
        "1",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        received: list[str] = []
        async with anthropic.AsyncAnthropic(
            api_key=DEFAULT_API_KEY, base_url=url, max_retries=0
        ) as sdk:
            await _collect_text(sdk, received)
        assert received == ["hi ", "hi ", "hi "]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _decode_frames(frames: Sequence[bytes], cuts: Sequence[int]) -> list[tuple[str, str]]:
    """Decode bytes with the SDK's own SSE decoder, delivered in pieces split at ``cuts``."""
    wire = b"".join(frames)
    points = sorted({min(cut, len(wire)) for cut in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    return [
        (sse.event or "", sse.data)
        for sse in SSEDecoder().iter_bytes(iter(piece for piece in pieces if piece))
    ]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_text_survives_sse_framing(texts: list[str], cuts: list[int]) -> None:
    frames = [
        sse_frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    ]
    decoded = _decode_frames(frames, cuts)
    assert [name for name, _ in decoded] == ["content_block_delta"] * len(texts)
    assert [json.loads(data)["delta"]["text"] for _, data in decoded] == texts
