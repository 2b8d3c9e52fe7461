"""The relay's reach into the SDK, checked against the locked SDK: the body read straight
from aiohttp (a private attribute path), and the failure classes it reports."""

from __future__ import annotations

import aiohttp
import anthropic
import httpx2

from sseserver.providers.anthropic import aiohttp_body, transport_error
from tests.fake_anthropic import FakeAnthropic, Reply, running_fake_anthropic


async def test_the_relay_reads_the_body_straight_from_aiohttp() -> None:
    """An SDK release that moves `http.stream._stream._aiohttp_response` would silently
    send every chunk through the SDK's own reader: this fails instead."""
    async with running_fake_anthropic() as fake:
        fake.enqueue(Reply(chunks=["fast ", "path"]))
        await _assert_fast_path(fake)


async def _assert_fast_path(fake: FakeAnthropic) -> None:
    async with anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0,
        http_client=anthropic.DefaultAioHttpClient(),
    ) as sdk:
        create = sdk.messages.with_streaming_response.create
        async with create(
            model="claude-sonnet-5-5", max_tokens=64, stream=True,
            messages=[{"role": "user", "content": "hi"}],
        ) as response:
            body = aiohttp_body(response)
            assert body is not None, "the locked SDK no longer exposes aiohttp's response"
            raw = b"".join([chunk async for chunk in body])
    assert b'"text":"fast "' in raw
    assert b'"text":"path"' in raw
    assert b"event: message_stop" in raw


def test_a_timeout_anywhere_in_the_chain_is_a_timeout() -> None:
    wrapped = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://x"))
    wrapped.__cause__ = httpx2.ReadTimeout("slow")
    assert transport_error(wrapped).type == "upstream_timeout"
    assert transport_error(httpx2.ReadTimeout("slow")).type == "upstream_timeout"
    assert transport_error(aiohttp.ServerTimeoutError()).type == "upstream_timeout"
    lost = transport_error(httpx2.RemoteProtocolError("cut"))
    assert (lost.type, lost.message) == (
        "upstream_unavailable", "The connection to Claude was lost."
    )
