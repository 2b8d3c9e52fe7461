"""GET /api/sse end to end: the real app, the real Anthropic SDK, the fake upstream."""

from __future__ import annotations

import json
import logging
import time

import aiohttp
import pytest

from .conftest import StartServer
from .support.fake_anthropic import (
    Drop,
    EndsEarly,
    FakeAnthropic,
    HttpError,
    MidStreamError,
    Reply,
    Silent,
)
from .support.ports import HeldPort
from .support.sse_client import open_sse

# Each chunk is one upstream text delta and must arrive as exactly one `message` event.
TRICKY_CHUNKS = [
    "line one\nline two",
    "\r\nwindows line",
    " lone\rcarriage return",
    "\ndata: not an event\n\nevent: fake\nid: 7\nretry: 1\n",
    ": not a comment\n",
    " emoji 😀👩‍👩‍👧 and a flag 🇫🇷",
    " 中文字符と日本語のテキスト",
    " NUL \0 and tab \t and U+2028 \u2028 and U+2029 \u2029",
    " " + "twenty kilobytes " * 1200,
    "\n\n\n",
    " end.",
]


async def test_tricky_text_arrives_byte_exact(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=TRICKY_CHUNKS, input_tokens=7))
    async with await open_sse(f"{server.url}/api/sse?message=hello") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.headers["Connection"] == "keep-alive"
        assert stream.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in stream.headers
        events = await stream.read_all()
    assert bytes(stream.raw).startswith(b"retry: 3000\n\n")
    assert not bytes(stream.raw).startswith(b"\xef\xbb\xbf")
    bytes(stream.raw).decode("utf-8")  # valid UTF-8 throughout
    assert [json.loads(e.data) for e in events if e.type == "message"] == TRICKY_CHUNKS
    assert stream.text == "".join(TRICKY_CHUNKS)
    types = stream.types()
    assert types == ["meta"] + ["message"] * len(TRICKY_CHUNKS) + ["usage", "done"]
    meta = json.loads(events[0].data)
    assert meta["model"] == "claude-sonnet-5-5"
    assert meta["provider"] == "anthropic"
    assert all(e.last_event_id.startswith(meta["stream"] + ":") for e in events)
    assert len({e.last_event_id for e in events}) == len(events)  # ids unique per event
    usage = json.loads(events[-2].data)
    assert usage["input_tokens"] == 7
    assert usage["stop_reason"] == "end_turn"
    assert usage["output_tokens"] > 0
    assert json.loads(events[-1].data) == "[DONE]"
    assert stream.parser.retry == 3000
    # What reached the upstream: the message, the default model and max_tokens.
    body = fake_anthropic.requests[0].body
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["model"] == "claude-sonnet-5-5"
    assert body["max_tokens"] == 1024
    assert body["stream"] is True


async def test_a_compressed_upstream_stream_arrives_byte_exact(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """The relay reads an uncompressed body straight from the socket's stream; a gzip one
    goes through the SDK's own decoder."""
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(Reply(chunks=TRICKY_CHUNKS, gzip=True))
    async with await open_sse(f"{server.url}/api/sse?message=hello") as stream:
        events = await stream.read_all()
    assert [json.loads(e.data) for e in events if e.type == "message"] == TRICKY_CHUNKS
    assert stream.types() == ["meta"] + ["message"] * len(TRICKY_CHUNKS) + ["usage", "done"]


async def test_options_reach_the_upstream(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, models=("claude-haiku-5-5",))
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    url = (f"{server.url}/api/sse?message=hi&model=claude-haiku-5-5&max_tokens=77"
           "&system=Be%20brief.")
    async with await open_sse(url) as stream:
        await stream.read_all()
    assert stream.text == "ok"
    body = fake_anthropic.requests[0].body
    assert (body["model"], body["max_tokens"], body["system"]) == (
        "claude-haiku-5-5", 77, "Be brief."
    )
    assert fake_anthropic.requests[0].api_key == fake_anthropic.api_key


FAILURES = [
    pytest.param(HttpError(401, "authentication_error"), "authentication_error", "", id="401"),
    pytest.param(HttpError(429, "rate_limit_error", retry_after=1), "rate_limit_error", "",
                 id="429"),
    pytest.param(HttpError(500, "api_error"), "api_error", "", id="500"),
    pytest.param(HttpError(529, "overloaded_error"), "overloaded_error", "", id="529"),
    pytest.param(MidStreamError(chunks=["Partial ", "answer"]), "overloaded_error",
                 "Partial answer", id="mid-stream-error"),
    pytest.param(Drop(chunks=["Cut ", "off"]), "upstream_unavailable", "Cut off", id="tcp-drop"),
]


@pytest.mark.parametrize(("behaviour", "error_type", "text_before"), FAILURES)
async def test_upstream_failure_ends_in_one_error_event(
    start_server: StartServer,
    fake_anthropic: FakeAnthropic,
    behaviour: HttpError | MidStreamError | Drop,
    error_type: str,
    text_before: str,
) -> None:
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(behaviour)
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        events = await stream.read_all()
    assert stream.status == 200
    assert stream.types() == ["meta"] + ["message"] * len(text_before.split()) + ["error"]
    assert stream.text == text_before  # text already sent stays
    error = json.loads(events[-1].data)
    assert error["type"] == error_type
    assert error["message"]
    assert "Traceback" not in error["message"]
    assert bytes(stream.raw).endswith(b"\n\n")
    # The server answers the next request normally.
    fake_anthropic.enqueue(Reply(chunks=["fine ", "again"]))
    async with await open_sse(f"{server.url}/api/sse?message=again") as stream:
        await stream.read_all()
    assert stream.types()[-2:] == ["usage", "done"]
    assert stream.text == "fine again"


async def test_a_reply_that_ends_before_message_stop_ends_in_an_error_not_a_success(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """A body that ends cleanly (no transport error, nothing for the SDK to raise) but
    before `message_stop` is a truncated reply: its reader must not take it for a whole
    one, so it ends with `error`, never `usage` and `done` (docs/protocol.md, "Errors")."""
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(EndsEarly(chunks=["Cut ", "short"]))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        events = await stream.read_all()
    assert stream.types() == ["meta", "message", "message", "error"]
    assert stream.text == "Cut short"
    assert json.loads(events[-1].data) == {
        "type": "upstream_unavailable", "message": "The reply from Claude ended early."
    }
    assert fake_anthropic.requests[0].completed_at is not None  # the fake ended it cleanly


# 400 characters, each position readable: the cut's place shows in the text itself.
LONG_MESSAGE = "".join(f"{i:03d}," for i in range(100))


@pytest.mark.parametrize("behaviour", [
    pytest.param(HttpError(400, "invalid_request_error", message=LONG_MESSAGE), id="http"),
    pytest.param(MidStreamError(message=LONG_MESSAGE), id="mid-stream"),
])
async def test_a_long_upstream_error_message_is_cut_to_300_characters(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
    behaviour: HttpError | MidStreamError,
) -> None:
    """The upstream's own message reaches the reader, but no more of it than 300
    characters: an error event stays small whatever the API sends (docs/protocol.md,
    "Errors")."""
    assert len(LONG_MESSAGE) == 400
    server = await start_server(fake=fake_anthropic)
    fake_anthropic.enqueue(behaviour)
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        events = await stream.read_all()
    error = json.loads(events[-1].data)
    assert error["type"] == behaviour.error_type
    assert error["message"] == LONG_MESSAGE[:300]
    assert error["message"].endswith(",073,074,")  # 75 of the 100 four-character items


async def test_a_silent_upstream_ends_in_upstream_timeout_after_upstream_timeout(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    """An upstream that sends some text, then nothing (not even its pings), is given up
    after `--upstream-timeout` seconds of silence: the reader gets `upstream_timeout`
    instead of waiting out the SDK's ten minutes, and the upstream request is closed
    (docs/protocol.md, "Errors"; docs/operations.md, "Limits and timeouts")."""
    timeout = 0.5
    server = await start_server(fake=fake_anthropic, upstream_timeout=timeout, heartbeat=60)
    fake_anthropic.enqueue(Silent(chunks=["thinking ", "hard"]))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.take(3)  # meta and the two deltas
        silent_since = time.monotonic()
        events = await stream.read_all(timeout=5)
        waited = time.monotonic() - silent_since
    print(f"upstream_timeout {waited:.2f} s after the upstream fell silent "
          f"(--upstream-timeout {timeout})")
    assert stream.types() == ["meta", "message", "message", "error"]
    assert json.loads(events[-1].data) == {
        "type": "upstream_timeout",
        "message": f"Claude did not answer in time: 127.0.0.1:{fake_anthropic.port} sent "
                   "nothing for too long.",
    }
    # Not before the timeout; after it, within a margin for a shared machine.
    assert timeout * 0.9 <= waited < timeout + 2
    await fake_anthropic.wait_closed(0, timeout=2)


async def test_upstream_unreachable_is_upstream_unavailable(start_server: StartServer) -> None:
    with HeldPort() as closed:  # connections refused, and nothing may listen there meanwhile
        server = await start_server(
            provider="anthropic", anthropic_api_key="sk-ant-unused",
            anthropic_base_url=f"http://127.0.0.1:{closed.port}",
        )
        async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
            events = await stream.read_all()
    assert stream.types() == ["meta", "error"]
    assert json.loads(events[-1].data)["type"] == "upstream_unavailable"


async def test_sdk_retries_an_overloaded_upstream_before_the_first_token(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, upstream_retries=1)
    fake_anthropic.enqueue(HttpError(529, "overloaded_error", retry_after_ms=10),
                           Reply(chunks=["second ", "try"]))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.read_all()
    assert stream.text == "second try"
    assert len(fake_anthropic.requests) == 2


@pytest.mark.parametrize("silent", [False, True], ids=["streaming", "silent-upstream"])
async def test_disconnect_closes_the_upstream_within_100ms(
    start_server: StartServer, fake_anthropic: FakeAnthropic, silent: bool
) -> None:
    server = await start_server(fake=fake_anthropic, resume_window=0)
    if silent:
        fake_anthropic.enqueue(Silent(chunks=["thinking ", "hard"]))
    else:
        fake_anthropic.enqueue(Reply(chunks=["tok "] * 500, delay=0.02))
    stream = await open_sse(f"{server.url}/api/sse?message=hi")
    await stream.take(3)  # meta and two deltas
    left_at = time.monotonic()
    await stream.close()
    closed_at = await fake_anthropic.wait_closed(0, timeout=2)
    latency_ms = (closed_at - left_at) * 1000
    kind = "silent" if silent else "streaming"
    print(f"upstream closed {latency_ms:.1f} ms after the client left ({kind})")
    assert latency_ms < 100
    assert fake_anthropic.requests[0].deltas_sent < 500


async def test_ping_after_heartbeat_of_silence(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    server = await start_server(fake=fake_anthropic, heartbeat=1)
    fake_anthropic.enqueue(Silent(chunks=["waiting"]))
    async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
        await stream.take(2)
        started = time.monotonic()
        await stream.wait_for_bytes(b": ping\n\n", timeout=3)
        waited = time.monotonic() - started
    assert 0.8 < waited < 1.6
    assert stream.parser.comments == [" ping"]


async def test_api_key_never_leaks(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = fake_anthropic.api_key
    server = await start_server(fake=fake_anthropic, log_level="debug")
    fake_anthropic.enqueue(
        Reply(chunks=["fine"]),
        HttpError(401, "authentication_error", message=f"invalid x-api-key {key}"),
        MidStreamError(message=f"boom {key}"),
    )
    seen = []
    for _ in range(3):
        async with await open_sse(f"{server.url}/api/sse?message=hi") as stream:
            await stream.read_all()
        seen.append(bytes(stream.raw).decode())
        seen.append(str(dict(stream.headers)))
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/healthz", "/static/app.js", "/api/sse", "/nope"):
            async with session.get(server.url + path) as response:
                seen.append(await response.text())
                seen.append(str(dict(response.headers)))
    assert "[redacted]" in seen[2]  # the upstream's message, scrubbed
    for text in seen:
        assert key not in text
    assert key not in caplog.text
    assert key not in repr(server.settings)
