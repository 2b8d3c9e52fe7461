"""The relay's own request to the Messages API (sseserver/providers/messages_api.py),
against the fake: the bytes and headers it sends, its retry policy (the one the SDK has),
the error it reports, its read timeout, and the failure classes `transport_error` names."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sseserver.providers.anthropic import UPSTREAM_TRANSPORT_ERRORS, transport_error
from sseserver.providers.messages_api import (
    API_VERSION,
    MessagesAPI,
    UpstreamStatusError,
    _backoff,
    _retry_after,
    request_body,
)
from tests.support.fake_anthropic import (
    FakeAnthropic,
    HttpError,
    Reply,
    Silent,
    running_fake_anthropic,
)

PARAMS: dict[str, Any] = {
    "model": "claude-sonnet-5-5", "max_tokens": 64,
    "messages": [{"role": "user", "content": "héllo \u2028"}],
}


def _api(fake: FakeAnthropic, *, retries: int = 0, read_timeout: float = 30.0) -> MessagesAPI:
    return MessagesAPI(fake.api_key, fake.base_url, max_retries=retries,
                       connect_timeout=5.0, read_timeout=read_timeout)


async def _read(api: MessagesAPI) -> bytes:
    async with api.stream(PARAMS) as response:
        return b"".join([chunk async for chunk in response.content.iter_any()])


async def test_the_request_is_the_api_s_json_with_its_headers() -> None:
    async with running_fake_anthropic() as fake:
        fake.enqueue(Reply(chunks=["fast ", "path"]))
        api = _api(fake)
        raw = await _read(api)
        await api.close()
    [sent] = fake.requests
    assert sent.body == PARAMS | {"stream": True}
    assert sent.headers["anthropic-version"] == API_VERSION
    assert sent.headers["x-api-key"] == fake.api_key
    assert sent.headers["content-type"] == "application/json"
    assert b'"text":"fast "' in raw
    assert b"event: message_stop" in raw


async def test_a_retried_status_waits_what_the_answer_asks_then_succeeds() -> None:
    async with running_fake_anthropic() as fake:
        fake.enqueue(HttpError(529, "overloaded_error", retry_after_ms=300),
                     HttpError(500, "api_error", retry_after_ms=10), Reply(chunks=["ok"]))
        api = _api(fake, retries=2)
        started = time.monotonic()
        raw = await _read(api)
        waited = time.monotonic() - started
        await api.close()
    assert len(fake.requests) == 3
    assert b'"text":"ok"' in raw
    assert 0.3 <= waited < 2


async def test_x_should_retry_false_and_a_400_are_not_retried() -> None:
    async with running_fake_anthropic() as fake:
        fake.enqueue(HttpError(500, "api_error", should_retry=False),
                     HttpError(400, "invalid_request_error"))
        api = _api(fake, retries=2)
        with pytest.raises(UpstreamStatusError) as first:
            await _read(api)
        with pytest.raises(UpstreamStatusError) as second:
            await _read(api)
        await api.close()
    assert len(fake.requests) == 2
    assert (first.value.status, first.value.error_type) == (500, "api_error")
    assert (second.value.status, second.value.error_type) == (400, "invalid_request_error")
    assert second.value.message


async def test_retries_end_after_max_retries_with_the_last_error() -> None:
    async with running_fake_anthropic() as fake:
        fake.enqueue(*(HttpError(529, "overloaded_error", retry_after_ms=1) for _ in range(3)))
        api = _api(fake, retries=2)
        with pytest.raises(UpstreamStatusError) as caught:
            await _read(api)
        await api.close()
    assert len(fake.requests) == 3
    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")


async def test_an_error_body_that_is_not_the_api_s_names_no_type() -> None:
    async def answer(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=502, text="<html>bad gateway</html>")

    app = aiohttp.web.Application()
    app.router.add_post("/v1/messages", answer)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    api = MessagesAPI("k", f"http://127.0.0.1:{port}", max_retries=0,
                      connect_timeout=5, read_timeout=5)
    try:
        with pytest.raises(UpstreamStatusError) as caught:
            async with api.stream(PARAMS):
                pass
    finally:
        await api.close()
        await runner.cleanup()
    assert (caught.value.status, caught.value.error_type, caught.value.message) == (
        502, None, None
    )


async def test_a_refused_connection_is_retried_then_raised() -> None:
    with socket_closed_port() as port:
        api = MessagesAPI("k", f"http://127.0.0.1:{port}", max_retries=1,
                          connect_timeout=5, read_timeout=5)
        started = time.monotonic()
        with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
            async with api.stream(PARAMS):
                pass
        await api.close()
    assert time.monotonic() - started >= 0.375  # one backoff: 0.5 s less up to a quarter
    assert transport_error(caught.value).kind == "refused"


def test_retry_after_is_honoured_within_a_minute_in_any_of_its_forms() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    def wait(**headers: str) -> float | None:
        return _retry_after(CIMultiDictProxy(CIMultiDict(
            {k.replace("_", "-"): v for k, v in headers.items()}
        )))

    assert wait(retry_after_ms="250") == 0.25
    assert wait(retry_after="2") == 2.0
    assert wait(retry_after_ms="x", retry_after="1.5") == 1.5
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 < (wait(retry_after=in_ten) or 0) <= 10
    assert wait(retry_after="600") is None  # too long: the backoff instead
    assert wait(retry_after="0") is None
    assert wait(retry_after="soon") is None
    assert wait() is None
    assert all(0.375 <= _backoff(0) <= 0.5 for _ in range(50))
    assert all(6 <= _backoff(10) <= 8 for _ in range(50))


async def test_the_read_timeout_bounds_every_read_of_the_body() -> None:
    """A silent upstream must end the read with a timeout the relay reports as
    `upstream_timeout`, not hang on."""
    async with running_fake_anthropic() as fake:
        fake.enqueue(Silent(chunks=["held"]))
        api = _api(fake, read_timeout=0.3)
        chunks: list[tuple[float, bytes]] = []

        async def read(body: AsyncIterator[bytes]) -> None:
            async with asyncio.timeout(5):  # the bound under test, or a failure
                async for chunk in body:
                    chunks.append((time.monotonic(), chunk))

        async with api.stream(PARAMS) as response:
            with pytest.raises(UPSTREAM_TRANSPORT_ERRORS) as caught:
                await read(response.content.iter_any())
            waited = time.monotonic() - chunks[-1][0]
        await api.close()
    assert b'"text":"held"' in b"".join(chunk for _, chunk in chunks)
    assert transport_error(caught.value).type == "upstream_timeout"
    assert 0.25 <= waited < 2


async def test_leaving_the_block_mid_body_closes_the_upstream_connection() -> None:
    async with running_fake_anthropic() as fake:
        fake.enqueue(Reply(chunks=["tok "] * 500, delay=0.01))
        api = _api(fake)
        async with api.stream(PARAMS) as response:
            await response.content.readany()
        closed = await fake.wait_closed(0, timeout=2)
        await api.close()
    assert closed is not None


def test_a_timeout_anywhere_in_the_chain_is_a_timeout() -> None:
    wrapped = aiohttp.ClientPayloadError("cut")
    wrapped.__cause__ = aiohttp.SocketTimeoutError("slow")
    assert transport_error(wrapped).type == "upstream_timeout"
    assert transport_error(aiohttp.ServerTimeoutError()).type == "upstream_timeout"
    assert transport_error(TimeoutError()).type == "upstream_timeout"
    lost = transport_error(aiohttp.ServerDisconnectedError())
    assert (lost.type, lost.message) == (
        "upstream_unavailable", "The connection to Claude was lost."
    )


class socket_closed_port:
    """A loopback port with nothing listening: bound, never listened on, for the block."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def test_the_body_is_the_compact_json_of_the_params_attachments_spliced_or_not() -> None:
    """An attachment's long base64 goes into the body without the JSON encoder; the bytes
    are exactly what the encoder would have written, whatever else the request holds."""
    blob = base64.b64encode(bytes(range(256)) * 512).decode()  # 128 KiB of data
    other = base64.b64encode(bytes(range(255, -1, -1)) * 512).decode()
    long_text = 'a "quoted" line\\ with \u2028 and é\n' * 5000  # long, but not base64 data
    params: dict[str, Any] = {"model": "m", "max_tokens": 5, "stream": True, "messages": [
        {"role": "user", "content": [
            {"type": "document", "title": 'A "title"',
             "source": {"type": "base64", "media_type": "application/pdf", "data": blob}},
            {"type": "image",
             "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
            {"type": "text", "text": long_text},
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image",
                 "source": {"type": "base64", "media_type": "image/png", "data": other}}]},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": f"sseserver-blob-{blob}"}]},
    ]}
    expected = json.dumps(params, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()
    assert request_body(params) == expected
    assert request_body({"messages": []}) == b'{"messages":[]}'
