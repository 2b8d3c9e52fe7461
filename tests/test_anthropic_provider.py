"""The relay's reach into the SDK, checked against the locked SDK: the body read straight
from aiohttp (a private attribute path), and the failure classes it reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import httpx2
import pytest

from sseserver.providers.anthropic import (
    UPSTREAM_TRANSPORT_ERRORS,
    aiohttp_body,
    transport_error,
)
from tests.support.fake_anthropic import FakeAnthropic, Reply, Silent, running_fake_anthropic


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


async def test_the_read_timeout_bounds_the_body_read_straight_from_aiohttp() -> None:
    """The relay reads the body past the SDK's own reader, so the SDK's read timeout
    bounds it only if the transport hands it to aiohttp's connection (as `sock_read`,
    which bounds every socket read): a silent upstream must end the read, with a
    timeout the relay reports as `upstream_timeout`, not hang on."""
    async with running_fake_anthropic() as fake, anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0,
        timeout=httpx2.Timeout(0.3, connect=5.0),
        http_client=anthropic.DefaultAioHttpClient(),
    ) as sdk:
        fake.enqueue(Silent(chunks=["held"]))
        create = sdk.messages.with_streaming_response.create
        chunks: list[tuple[float, bytes]] = []

        async def read(body: AsyncIterator[bytes]) -> None:
            async with asyncio.timeout(5):  # the bound under test, or a failure
                async for chunk in body:
                    chunks.append((time.monotonic(), chunk))

        async with create(
            model="claude-sonnet-5-5", max_tokens=64, stream=True,
            messages=[{"role": "user", "content": "hi"}],
        ) as response:
            body = aiohttp_body(response)
            assert body is not None, "the locked SDK no longer exposes aiohttp's response"
            with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
                await read(body)
            waited = time.monotonic() - chunks[-1][0]
    assert b'"text":"held"' in b"".join(chunk for _, chunk in chunks)
    assert transport_error(caught.value).type == "upstream_timeout"
    assert 0.25 <= waited < 2


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
