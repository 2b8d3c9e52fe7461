"""Tests of the shipped load generator: its HTTP and SSE parsing, its per-stream checks, and
runs against the real app (demo and anthropic providers) through the conftest fixtures.

Why: `make bench` trusts the loadgen to count events and to catch a lost or repeated one;
a parser that miscounts would make every benchmark number wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from aiohttp import web

from sseserver.loadgen import LoadGen, Options, format_report
from sseserver.loadgen.checks import StreamCheck
from sseserver.loadgen.decoder import SseDecoder
from sseserver.loadgen.protocol import Connection, ProtocolError, ResponseParser
from sseserver.loadgen.report import percentiles
from sseserver.loadgen.stats import Stats

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.ports import HeldPort

Event = tuple[bytes | None, bytes, bytes]


def _decode(chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    decoder = SseDecoder(lambda i, e, d: events.append((i, e, d)))
    for chunk in chunks:
        decoder.feed(chunk)
    return events


def _splits(data: bytes) -> list[list[bytes]]:
    """The data whole, and cut in two at every position, and byte by byte."""
    out = [[data], [bytes([b]) for b in data]]
    out += [[data[:i], data[i:]] for i in range(1, len(data))]
    return out


SSE_BODY = (
    b"retry: 3000\n\n"
    b"id: s:0\nevent: meta\ndata: {\"a\":1}\n\n"
    b": ping\n\n"
    b"id: s:1\r\nevent: message\r\ndata: \"x\"\r\n\r\n"
    b"id: s:2\revent: message\rdata:\"no space\"\r\r"
    b"data: line1\ndata: line2\n\n"
    b"id: s:3\nevent: done\ndata: \"[DONE]\"\n\n"
)
SSE_EVENTS: list[Event] = [
    (b"s:0", b"meta", b'{"a":1}'),
    (b"s:1", b"message", b'"x"'),
    (b"s:2", b"message", b'"no space"'),
    (None, b"message", b"line1\nline2"),
    (b"s:3", b"done", b'"[DONE]"'),
]


def test_sse_decoder_any_split() -> None:
    """LF, CRLF and CR endings, comments, a retry-only frame, multi-line data: the same
    events however the bytes are cut (a CRLF split across reads is one line end)."""
    for chunks in _splits(SSE_BODY):
        assert _decode(chunks) == SSE_EVENTS, chunks


def test_sse_decoder_holds_an_unfinished_event() -> None:
    assert _decode([b"id: s:0\ndata: 1\n"]) == []
    assert _decode([b"id: s:0\ndata: 1\n", b"\n"]) == [(b"s:0", b"message", b"1")]


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def _sse_into(parser: ResponseParser) -> list[Event]:
    """Route the parser's body through an SseDecoder; returns the list events go to."""
    events: list[Event] = []
    decoder = SseDecoder(lambda i, e, d: events.append((i, e, d)))
    parser.on_head = lambda p: decoder.feed
    return events


def test_response_parser_chunked_any_split() -> None:
    """A chunked SSE response with chunk extensions and a trailer, cut anywhere."""
    wire = HEAD + _chunked(SSE_BODY, 7)
    for chunks in _splits(wire):
        parser = ResponseParser()
        events = _sse_into(parser)
        for chunk in chunks:
            parser.feed(chunk)
        assert parser.complete
        assert parser.status == 200
        assert parser.keep_alive
        assert events == SSE_EVENTS


def test_response_parser_lengths_and_close() -> None:
    body: list[bytes] = []
    parser = ResponseParser()
    parser.on_head = lambda p: body.append
    parser.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhel")
    assert not parser.complete
    parser.feed(b"lo")
    assert parser.complete
    assert b"".join(body) == b"hello"

    no_content = ResponseParser()
    no_content.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert no_content.complete
    assert no_content.status == 204

    until_close = ResponseParser()
    until_close.feed(b"HTTP/1.0 200 OK\r\n\r\ndata")
    assert not until_close.complete
    assert not until_close.keep_alive
    until_close.feed_eof()
    assert until_close.complete

    closing = ResponseParser()
    closing.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert closing.complete
    assert not closing.keep_alive


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nab\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    ],
)
def test_response_parser_refuses_bad_framing(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(wire)


def _check(ids: list[bytes | None], events: list[bytes] | None = None) -> StreamCheck:
    stats = Stats()
    check = StreamCheck(stats, drop_after=0, started=0.0)
    check.attach(Connection(stats))
    for n, event_id in enumerate(ids):
        event = events[n] if events else b"message"
        check.on_event(event_id, event, b'"x"')
    return check


def test_stream_check_counts_gaps_duplicates_and_foreign_ids() -> None:
    ok = _check([b"s:0", b"s:1", b"s:2"], [b"meta", b"message", b"done"])
    assert (ok.missing, ok.duplicate, ok.bad, ok.done, ok.messages) == (0, 0, 0, True, 1)
    gap = _check([b"s:0", b"s:3", b"s:4"])
    assert gap.missing == 2
    dup = _check([b"s:0", b"s:1", b"s:1", b"s:0", b"s:2"])
    assert (dup.missing, dup.duplicate) == (0, 2)
    foreign = _check([b"s:0", b"t:1", None, b"s:x", b"nocolon", b"s:1"])
    assert (foreign.bad, foreign.missing, foreign.duplicate) == (4, 0, 0)
    assert foreign.last_id == b"s:1"


def test_percentiles_nearest_rank() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0,
                                   "n": 100}
    assert percentiles([]) == {}


async def _run(url: str, **options: Any) -> dict[str, Any]:
    return await LoadGen(Options(url=url, **options)).run()


def _assert_clean(report: dict[str, Any], streams: int) -> None:
    assert report["errors"] == {}, report["errors"]
    assert report["verification"]["ok"], report["verification"]
    assert report["streams"]["completed"] == streams
    assert report["streams"]["failed"] == 0


@pytest.mark.parametrize("mode", ["sse", "streams"])
async def test_run_against_the_demo_provider(start_server: StartServer, mode: str) -> None:
    server = await start_server(demo_delay_ms=0, demo_tokens=40)
    report = await _run(server.url, connections=4, streams=12, mode=mode,
                        expect_events=43, expect_messages=40)
    _assert_clean(report, 12)
    assert report["verification"]["events_per_stream"] == {43: 12}
    assert report["messages"] == 12 * 40
    assert report["ttfe_ms"]["n"] == 12
    assert report["inter_event_ms"]["n"] == 12 * 39
    assert "server" not in report
    assert "verification  OK" in format_report(report)


@pytest.mark.parametrize(("mode", "delay_ms", "drop_after"),
                         [("sse", 1, 7), ("streams", 1, 7), ("streams", 0, 10)])
async def test_drop_and_resume_loses_and_repeats_nothing(
    start_server: StartServer, mode: str, delay_ms: int, drop_after: int
) -> None:
    """Every connection is cut after `drop_after` events; each resume with Last-Event-ID
    must continue exactly after the last id seen (the checks would count a gap or a
    duplicate). With no delay, the rest of a stream (and the end of the response) often
    arrives in the read that triggers the drop: that is still a drop, to be resumed."""
    server = await start_server(demo_delay_ms=delay_ms, demo_tokens=30)
    report = await _run(server.url, connections=3, streams=6, mode=mode,
                        drop_after=drop_after, expect_events=33)
    _assert_clean(report, 6)
    assert report["streams"]["resumes"] == 6 * (33 // drop_after)


async def test_run_through_the_anthropic_provider(
    start_server: StartServer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.default_reply = Reply(chunks=tuple(f"w{i} " for i in range(25)))
    server = await start_server(fake=fake_anthropic)
    report = await _run(server.url, connections=3, streams=6, expect_messages=25)
    _assert_clean(report, 6)


async def test_added_latency_against_the_pacing(start_server: StartServer) -> None:
    server = await start_server(demo_delay_ms=5, demo_tokens=10)
    report = await _run(server.url, connections=2, streams=2, pace_ms=5)
    _assert_clean(report, 2)
    added = report["added_latency_ms"]
    gaps = report["inter_event_ms"]
    assert added["n"] == gaps["n"] == 2 * 9
    assert added["max"] == pytest.approx(max(0.0, gaps["max"] - 5), abs=1e-6)


async def _broken_app_url(body: bytes, status: int = 200) -> tuple[str, web.AppRunner]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=status, headers={"Content-Type": "text/event-stream"}
        )
        await response.prepare(request)
        await response.write(body)
        return response

    app = web.Application()
    app.router.add_get("/api/sse", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}", runner


async def test_a_lost_event_and_a_missing_done_are_reported() -> None:
    """A server that skips index 2 and never sends done fails the verification."""
    body = b"".join(b"id: s:%d\nevent: message\ndata: 1\n\n" % i for i in (0, 1, 3, 4))
    url, runner = await _broken_app_url(body)
    try:
        report = await _run(url, connections=1, streams=2)
    finally:
        await runner.cleanup()
    v = report["verification"]
    assert not v["ok"]
    assert (v["missing"], v["no_done"], v["streams_checked"]) == (2, 2, 2)
    assert report["streams"]["failed"] == 2


async def test_http_errors_are_counted_by_status() -> None:
    url, runner = await _broken_app_url(b"", status=503)
    try:
        report = await _run(url, connections=2, streams=4)
    finally:
        await runner.cleanup()
    assert report["errors"] == {"http_503": 4}
    assert report["streams"]["failed"] == 4
    assert report["verification"]["streams_checked"] == 0  # refused, not served wrongly
    assert not report["verification"]["ok"]


async def test_duration_mode_cuts_streams_at_the_deadline(start_server: StartServer) -> None:
    server = await start_server(demo_delay_ms=20, demo_tokens=1000)
    report = await _run(server.url, connections=3, duration=0.6, warmup=0.1)
    assert report["streams"]["cut"] == 3
    assert report["errors"] == {}
    assert 0.4 < report["window_s"] < 0.7
    assert report["messages_per_s"] > 0


async def test_refused_connections_are_errors() -> None:
    with HeldPort() as closed:  # nothing may listen there while the test runs
        report = await _run(f"http://127.0.0.1:{closed.port}", connections=1, streams=2)
    assert report["errors"] == {"connect:ConnectionRefusedError": 2}


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
async def test_command_line_json(start_server: StartServer, loop: str) -> None:
    """The CLI as the bench runner calls it, with this process as the 'server' pid; on
    uvloop by default (it is installed with sseserver), or on asyncio's loop."""
    server = await start_server(demo_delay_ms=0, demo_tokens=5)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sseserver.loadgen", server.url, "-n", "3", "-c", "1",
        "--expect-messages", "5", "--json", "--server-pid", str(os.getpid()),
        "--loop", loop, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    report = json.loads(out)
    assert report["verification"]["ok"]
    assert report["loadgen"]["loop"] == ("uvloop" if loop == "auto" else "asyncio")
    assert report["server"]["cpu_s"] >= 0
    assert report["server"]["rss_peak"] > 0
