"""`python -m sseserver.loadgen`: a load generator for SSE servers, shipped with the package
so a deployment can be measured the way `make bench` measures it (issue 6).

Why our own: wrk and k6 count bytes or responses, not events, and cannot tell a lost or
repeated event from a delivered one. This one opens real TCP connections, speaks HTTP/1.1
itself, splits the body into SSE events, and checks every stream: ids `<stream>:<index>`
strictly consecutive (no gap, no duplicate, also across resumes with Last-Event-ID),
`done` received, and the expected number of events.

It must never be the bottleneck, so the per-event path is lean: one `asyncio.Protocol` per
connection, no task, future or timer per event, bodies split on blank lines in C
(`bytes.split`), and verification done inline in the data callback. It reports its own
CPU use over the measuring window: well under 100% of its core means it had idle time.

    worker (one per connection) ─▶ request ─▶ _Connection.data_received
        ─▶ ResponseParser (status, headers, chunked body) ─▶ SseDecoder (events)
        ─▶ StreamCheck.on_event (ids, counts, timings, drop after N) ─▶ Stats

"Added latency" is defined for paced sources (`--pace-ms`, e.g. the demo provider's
`--demo-delay-ms` or the fake upstream's `--delay-ms`): for every pair of consecutive
`message` events of one stream (on the same connection), `max(0, gap - pace)`, where gap
is the difference of their arrival times at this process. A source that sleeps `pace`
before each token offers exactly that gap; anything above it was added on the way (event
loop lag in the server, a late timer, batching, the network, this process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

OnEvent = Callable[[bytes | None, bytes, bytes], None]

# Bodies of non-SSE answers (errors, the POST's JSON) are kept up to this size.
_MAX_COLLECTED: Final = 64 * 1024
_MAX_HEAD: Final = 64 * 1024
_PERCENTILES: Final = (50, 90, 99)


class ProtocolError(Exception):
    """The server broke HTTP/1.1 framing."""


# -- SSE ---------------------------------------------------------------------------------


class SseDecoder:
    """Splits an SSE body into events: (id or None, event name, data), per WHATWG HTML.

    Minimal on purpose: line endings CRLF, LF and CR; comments skipped; `data` lines
    joined with LF; an event is dispatched only when it has data. `retry` is ignored.
    """

    __slots__ = ("_buf", "_cr", "_on_event")

    def __init__(self, on_event: OnEvent) -> None:
        self._on_event = on_event
        self._buf = b""
        self._cr = False  # the last chunk ended in CR: its LF may come next

    def feed(self, data: bytes) -> None:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                data = data[:-1]
                self._cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + data if self._buf else data
        frames = buf.split(b"\n\n")
        self._buf = frames.pop()
        on_event = self._on_event
        for frame in frames:
            lines = frame.split(b"\n")
            if len(lines) == 3:  # fast path: `id: I`, `event: E`, `data: D`, as we send
                first, second, third = lines
                if first[:4] == b"id: " and second[:7] == b"event: " and third[:6] == b"data: ":
                    on_event(first[4:], second[7:], third[6:])
                    continue
            event_id: bytes | None = None
            event = b"message"
            payload: bytes | None = None
            for line in lines:
                if not line or line[0] == 0x3A:  # blank, or ':' comment (heartbeat)
                    continue
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    payload = value if payload is None else payload + b"\n" + value
                elif name == b"id":
                    event_id = value
                elif name == b"event":
                    event = value
            if payload is not None:
                on_event(event_id, event, payload)


# -- HTTP/1.1 responses --------------------------------------------------------------------

_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """One HTTP/1.1 response: status line and headers, then a chunked, length-delimited or
    close-delimited body handed to `sink` as it arrives."""

    __slots__ = ("_buf", "_left", "_sink", "_state", "headers", "keep_alive", "on_head", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = True
        self.on_head: Callable[[ResponseParser], Callable[[bytes], None]] | None = None
        self._sink: Callable[[bytes], None] = _discard
        self._state = _HEAD
        self._buf = b""
        self._left = 0

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """Consume bytes; raises ProtocolError on bad framing."""
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        end = len(buf)
        pieces: list[bytes] = []  # body bytes of this feed, handed to the sink at once
        state = self._state
        while pos < end and state != _DONE:
            if state == _CHUNK_SIZE:
                # The hot loop: one whole chunk (size line, data, CRLF) per turn.
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > 1024:
                        raise ProtocolError("chunk size line too long")
                    break
                size = _chunk_size(buf[pos:eol])
                start = eol + 2
                if size == 0:
                    pos, state = start, _TRAILER
                    continue
                stop = start + size
                if stop + 2 <= end:
                    if buf[stop:stop + 2] != b"\r\n":
                        raise ProtocolError("chunk not followed by CRLF")
                    pieces.append(buf[start:stop])
                    pos = stop + 2
                else:  # the chunk goes on in a later read
                    pieces.append(buf[start:stop])
                    self._left = size - (min(stop, end) - start)
                    pos = min(stop, end)
                    state = _CHUNK_DATA if self._left else _CHUNK_END
            elif state in (_CHUNK_DATA, _LENGTH):
                take = min(self._left, end - pos)
                pieces.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    state = _CHUNK_END if state == _CHUNK_DATA else _DONE
            elif state == _UNTIL_CLOSE:
                pieces.append(buf[pos:])
                pos = end
            elif state == _HEAD:
                eoh = buf.find(b"\r\n\r\n", pos)
                if eoh < 0:
                    if end - pos > _MAX_HEAD:
                        raise ProtocolError("response head too large")
                    break
                self._parse_head(buf[pos:eoh])
                state = self._state
                pos = eoh + 4
            else:  # a line: the CRLF after a chunk, or a trailer
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > 1024:
                        raise ProtocolError("trailer line too long")
                    break
                line = buf[pos:eol]
                pos = eol + 2
                if state == _CHUNK_END:
                    if line:
                        raise ProtocolError("chunk not followed by CRLF")
                    state = _CHUNK_SIZE
                elif not line:  # _TRAILER: the blank line ends the message
                    state = _DONE
        self._state = state
        if pos < end and state != _DONE:
            self._buf = buf[pos:]
        if pieces:
            self._sink(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def feed_eof(self) -> None:
        """The connection closed: that ends a close-delimited body, and nothing else."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:40]!r}")
        self.status = int(parts[1])
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:40]!r}")
            self.headers[name.strip().lower()] = value.strip()
        connection = self.headers.get("connection", "").lower()
        self.keep_alive = parts[0] == "HTTP/1.1" and "close" not in connection
        if self.on_head is not None:
            self._sink = self.on_head(self)
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._state = _DONE
        elif "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._state = _CHUNK_SIZE
        elif "content-length" in self.headers:
            self._left = int(self.headers["content-length"])
            self._state = _LENGTH if self._left else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False


def _discard(data: bytes) -> None:
    return None


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line, 16)
    except ValueError:
        try:  # a chunk extension (`;name=value`) follows the size
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            size = -1
    if size < 0:
        raise ProtocolError(f"bad chunk size {line[:20]!r}")
    return size


# -- connections ------------------------------------------------------------------------------


class ConnectionLost(Exception):
    """The connection closed before the response was complete."""


class _Connection(asyncio.Protocol):
    """One TCP connection, carrying one request at a time (keep-alive between them)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self.transport: asyncio.Transport | None = None
        self.now = 0.0  # arrival time of the bytes being handled
        self.connecting_since = 0.0
        self.gate: asyncio.Semaphore | None = None  # the connect slot, until the first answer
        self.dropped = False  # we cut it on purpose (drop/resume)
        self._parser: ResponseParser | None = None
        self._done: asyncio.Future[ResponseParser] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transport is not a subclass of
        # asyncio.Transport, and the load generator may run inside a uvloop program.
        self.transport = cast(asyncio.Transport, transport)
        self._stats.open_connections += 1
        self._stats.peak_connections = max(
            self._stats.peak_connections, self._stats.open_connections
        )

    def request(self, data: bytes, parser: ResponseParser) -> asyncio.Future[ResponseParser]:
        """Send a request; the future resolves when its response has fully arrived."""
        assert self.transport is not None, "request() on a closed connection"
        assert self._done is None, "one request at a time"
        self._parser = parser
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._done

    def _release_gate(self) -> None:
        if self.gate is not None:
            self.gate.release()
            self.gate = None

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()
        if self.gate is not None:
            self._release_gate()
        self._stats.bytes += len(data)
        parser = self._parser
        if parser is None or self._done is None:
            return  # bytes after a complete response: ignored
        try:
            parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        # After a drop, what followed in this read was "lost": the request fails.
        if parser.complete and not self.dropped and not self._done.done():
            self._done.set_result(parser)
            self._parser = None
            self._done = None

    def eof_received(self) -> bool | None:
        if self._parser is not None:
            self._parser.feed_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_gate()
        self._stats.open_connections -= 1
        self.transport = None
        if self._parser is not None and self._done is not None and not self._done.done():
            self._parser.feed_eof()
            if self._parser.complete and not self.dropped:
                self._done.set_result(self._parser)
            else:
                self._done.set_exception(ConnectionLost(str(exc) if exc else "closed"))
        self._parser = None
        self._done = None

    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self.abort()

    def drop(self) -> None:
        """Cut the connection now, as a network drop would."""
        self.dropped = True
        self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def reusable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


# -- statistics -------------------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    """Counters shared by all workers; timings only while `recording` (the window)."""

    recording: bool = False
    events: int = 0
    messages: int = 0
    bytes: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    ramp_s: float = 0.0  # when all --connections were first open at once
    ttfe: array[float] = field(default_factory=lambda: array("d"))
    gaps: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)
    started: int = 0
    completed: int = 0
    cut: int = 0
    failed: int = 0
    resumes: int = 0
    # verification, over streams that ended (completed or failed, not cut at the deadline)
    checked: int = 0
    missing: int = 0
    duplicate: int = 0
    bad_id: int = 0
    no_done: int = 0
    wrong_count: int = 0
    counts: Counter[int] = field(default_factory=Counter)  # events per stream -> streams


class StreamCheck:
    """Verifies one stream as its events arrive, across connections (resumes)."""

    __slots__ = (
        "_drop_after", "_stats", "bad", "conn", "conn_events", "done", "duplicate",
        "error_type", "events", "first_message", "last_id", "last_message", "messages",
        "missing", "next_index", "started", "stream",
    )

    def __init__(self, stats: Stats, drop_after: int, started: float) -> None:
        self._stats = stats
        self._drop_after = drop_after
        self.started = started
        self.conn: _Connection | None = None
        self.conn_events = 0
        self.stream: bytes | None = None
        self.next_index = 0
        self.last_id: bytes | None = None
        self.events = 0
        self.messages = 0
        self.missing = 0
        self.duplicate = 0
        self.bad = 0
        self.done = False
        self.error_type: str | None = None
        self.first_message: float | None = None
        self.last_message: float | None = None

    def attach(self, conn: _Connection) -> None:
        """A new connection for this stream: gaps are not measured across it."""
        self.conn = conn
        self.conn_events = 0
        self.last_message = None

    def on_event(self, event_id: bytes | None, event: bytes, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if conn.dropped:
            return
        stats = self._stats
        now = conn.now
        self.events += 1
        self.conn_events += 1
        stats.events += 1
        if event_id is None:
            self.bad += 1
        else:
            stream, sep, index_text = event_id.rpartition(b":")
            try:
                index = int(index_text) if sep else -1
            except ValueError:
                index = -1
            if index < 0 or (self.stream is not None and stream != self.stream):
                self.bad += 1
            else:
                self.stream = stream
                if index == self.next_index:
                    self.next_index = index + 1
                elif index < self.next_index:
                    self.duplicate += 1
                else:
                    self.missing += index - self.next_index
                    self.next_index = index + 1
                self.last_id = event_id
        if event == b"message":
            self.messages += 1
            stats.messages += 1
            if self.first_message is None:
                self.first_message = now
                if stats.recording:
                    stats.ttfe.append(now - self.started)
            elif self.last_message is not None and stats.recording:
                stats.gaps.append(now - self.last_message)
            self.last_message = now
        elif event == b"done":
            self.done = True
        elif event == b"error":
            try:
                self.error_type = str(json.loads(data)["type"])
            except (ValueError, KeyError, TypeError):
                self.error_type = "unreadable"
        if (self._drop_after and self.conn_events >= self._drop_after and not self.done
                and self.error_type is None):
            conn.drop()


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    url: str = "http://127.0.0.1:8080"
    connections: int = 50
    duration: float | None = None
    streams: int | None = None
    warmup: float | None = None
    measure: float | None = None
    mode: str = "sse"
    message: str = "Hello"
    drop_after: int = 0
    expect_events: int | None = None
    expect_messages: int | None = None
    pace_ms: float | None = None
    server_pid: int | None = None
    connect_concurrency: int = 100
    timeout: float | None = None
    headers: tuple[str, ...] = ()


class _ProcStats:
    """CPU seconds and resident memory of a process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def percentiles(values: Sequence[float] | array[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank) in ms; empty dict when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)
    out = {f"p{p}": ordered[max(0, math.ceil(p / 100 * n) - 1)] * scale for p in _PERCENTILES}
    out["max"] = ordered[-1] * scale
    out["n"] = n
    return out


class LoadGen:
    """One load run; `await LoadGen(options).run()` returns the report as a dict."""

    def __init__(self, options: Options) -> None:
        if (options.duration is None) == (options.streams is None):
            raise ValueError("give exactly one of duration or streams")
        if options.mode not in ("sse", "streams"):
            raise ValueError("mode is sse or streams")
        self.o = options
        parts = urlsplit(options.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the URL must be http://host[:port]")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._base = parts.path.rstrip("/")
        host_header = parts.netloc
        extra = "".join(f"{h}\r\n" for h in options.headers)
        self._common = f"Host: {host_header}\r\n{extra}".encode("latin-1")
        self.stats = Stats()
        self._to_start = options.streams
        self._stopping = False
        self._connect_gate = asyncio.Semaphore(options.connect_concurrency)
        self._server = _ProcStats(options.server_pid) if options.server_pid else None
        self._window_end = asyncio.Event()
        self._t0 = 0.0

    # requests

    def _sse_path(self) -> str:
        if self.o.mode == "sse":
            return f"{self._base}/api/sse?message={quote(self.o.message)}"
        raise AssertionError("streams mode gets its path from the POST")

    def _get(self, path: str, last_id: bytes | None) -> bytes:
        resume = b"Last-Event-ID: " + last_id + b"\r\n" if last_id else b""
        return (
            f"GET {path} HTTP/1.1\r\nAccept: text/event-stream\r\n".encode("latin-1")
            + self._common + resume + b"\r\n"
        )

    def _post(self) -> bytes:
        body = json.dumps({"messages": [{"role": "user", "content": self.o.message}]}).encode()
        return (
            f"POST {self._base}/api/streams HTTP/1.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n".encode("latin-1")
            + self._common + b"\r\n" + body
        )

    async def _connect(self) -> _Connection:
        # The slot is held until the server answers on the new connection, not just until
        # the handshake: the kernel completes handshakes for a server that has not accepted
        # yet, and a burst past its listen backlog costs 1 s SYN retransmits (a ramp
        # artefact, not what S2/S4 measure).
        await self._connect_gate.acquire()
        try:
            loop = asyncio.get_running_loop()
            since = time.perf_counter()
            _, conn = await loop.create_connection(
                lambda: _Connection(self.stats), self._host, self._port
            )
        except BaseException:
            self._connect_gate.release()
            raise
        conn.gate = self._connect_gate
        conn.connecting_since = since
        if self.stats.open_connections >= self.o.connections and not self.stats.ramp_s:
            self.stats.ramp_s = time.perf_counter() - self._t0
        return conn

    # workers

    def _take(self) -> bool:
        if self._stopping:
            return False
        if self._to_start is None:
            return True
        if self._to_start <= 0:
            return False
        self._to_start -= 1
        return True

    async def _worker(self) -> None:
        conn: _Connection | None = None
        try:
            while self._take():
                conn = await self._one_stream(conn)
        finally:
            if conn is not None:
                conn.abort()

    async def _one_stream(self, conn: _Connection | None) -> _Connection | None:
        """Run one stream to its end (resuming after drops); returns a reusable connection."""
        stats = self.stats
        stats.started += 1
        check = StreamCheck(stats, self.o.drop_after, time.perf_counter())
        try:
            if conn is None or not conn.reusable:
                conn = await self._connect()
                # TTFE counts from the connect, not from the wait for a connect slot.
                check.started = conn.connecting_since
            if self.o.mode == "streams":
                path, conn = await self._create(conn)
                if path is None:
                    stats.failed += 1
                    return conn
            else:
                path = self._sse_path()
            while True:
                if conn is None or not conn.reusable:
                    conn = await self._connect()
                check.attach(conn)
                parser = ResponseParser()
                parser.on_head = functools.partial(self._body_sink, check=check, collected=[])
                try:
                    await conn.request(self._get(path, check.last_id), parser)
                except ConnectionLost:
                    if conn.dropped and not check.done:
                        stats.resumes += 1
                        conn = None
                        continue  # resume with Last-Event-ID
                    if check.done:  # it had all it needed; the close is not an error
                        conn = None
                        break
                    stats.errors["connection_lost"] += 1
                    self._finish(check, ok=False)
                    return None
                if parser.status != 200:
                    kind = f"http_{parser.status}"
                    stats.errors[kind] += 1
                    self._finish(check, ok=False)
                    return conn if parser.keep_alive else None
                if not parser.keep_alive:
                    conn.abort()
                    conn = None
                break
            if check.error_type is not None:
                stats.errors[f"error_event:{check.error_type}"] += 1
            self._finish(check, ok=check.done)
            return conn
        except asyncio.CancelledError:
            stats.cut += 1
            if conn is not None:
                conn.abort()
            raise
        except OSError as exc:
            name = type(exc).__name__
            stats.errors[f"connect:{name}"] += 1
            stats.failed += 1
            await asyncio.sleep(0.05)  # do not spin on a server that refuses
            return None
        except ProtocolError:
            stats.errors["protocol"] += 1
            self._finish(check, ok=False)
            return None

    def _body_sink(
        self, parser: ResponseParser, check: StreamCheck, collected: list[bytes]
    ) -> Callable[[bytes], None]:
        if parser.status == 200 and "text/event-stream" in parser.headers.get("content-type", ""):
            return SseDecoder(check.on_event).feed
        return lambda data: _collect(collected, data)

    async def _create(self, conn: _Connection) -> tuple[str | None, _Connection | None]:
        """POST /api/streams; the stream's URL, or None after counting the error."""
        parser = ResponseParser()
        collected: list[bytes] = []
        parser.on_head = lambda p: lambda data: _collect(collected, data)
        try:
            await conn.request(self._post(), parser)
        except ConnectionLost:
            self.stats.errors["connection_lost"] += 1
            return None, None
        keep = conn if parser.keep_alive else None
        if parser.status != 201:
            self.stats.errors[f"http_{parser.status}"] += 1
            return None, keep
        try:
            url = json.loads(b"".join(collected))["url"]
        except (ValueError, KeyError, TypeError):
            self.stats.errors["bad_create_answer"] += 1
            return None, keep
        return str(url), keep

    def _finish(self, check: StreamCheck, *, ok: bool) -> None:
        stats = self.stats
        if ok:
            stats.completed += 1
        else:
            stats.failed += 1
        stats.checked += 1
        stats.missing += check.missing
        stats.duplicate += check.duplicate
        stats.bad_id += check.bad
        stats.counts[check.events] += 1
        if not check.done:
            stats.no_done += 1
        elif (self.o.expect_events is not None and check.events != self.o.expect_events) or (
            self.o.expect_messages is not None and check.messages != self.o.expect_messages
        ):
            stats.wrong_count += 1

    # the window and the report

    async def run(self) -> dict[str, Any]:
        o = self.o
        _raise_nofile_limit()
        warmup = o.warmup if o.warmup is not None else (1.0 if o.duration is not None else 0.0)
        limit = o.timeout
        if limit is None:
            limit = (o.duration + 30.0) if o.duration is not None else 600.0
        rss_start = self._server.rss() if self._server else 0
        t0 = self._t0 = time.perf_counter()
        workers = [asyncio.create_task(self._worker()) for _ in range(o.connections)]
        window = asyncio.create_task(self._window(warmup, o.measure))
        run_for = o.duration if o.duration is not None else limit
        timed_out = False
        finished, pending = await asyncio.wait(workers, timeout=run_for)
        if pending:
            timed_out = o.duration is None
            self._stopping = True
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in finished:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                raise exc  # a bug of ours: show it
        if not window.done():
            self._window_end.set()
        measured = await window
        wall = time.perf_counter() - t0
        if timed_out:
            self.stats.errors["run_timeout"] += self.stats.cut
        return self._report(measured, rss_start, wall)

    async def _window(self, warmup: float, measure: float | None) -> dict[str, float]:
        """Snapshot counters and CPU at the window's start and end; sample RSS meanwhile."""
        stats = self.stats
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(warmup):
                await self._window_end.wait()
        if self._window_end.is_set():  # the run ended inside the warm-up: measure it all
            return {"seconds": 0.0}
        start = {
            "t": time.perf_counter(), "events": stats.events, "messages": stats.messages,
            "bytes": stats.bytes, "cpu": time.process_time(),
            "server_cpu": self._server.cpu() if self._server else 0.0,
        }
        stats.recording = True
        peak_rss = self._server.rss() if self._server else 0
        deadline = start["t"] + measure if measure is not None else math.inf
        while not self._window_end.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.25, left)):
                    await self._window_end.wait()
            if self._server:
                with contextlib.suppress(OSError):
                    peak_rss = max(peak_rss, self._server.rss())
        stats.recording = False
        now = time.perf_counter()
        out = {
            "seconds": now - start["t"],
            "events": stats.events - start["events"],
            "messages": stats.messages - start["messages"],
            "bytes": stats.bytes - start["bytes"],
            "cpu": time.process_time() - start["cpu"],
            "peak_rss": float(peak_rss),
            "connections_at_end": float(stats.open_connections),
        }
        if self._server:
            with contextlib.suppress(OSError):
                out["server_cpu"] = self._server.cpu() - start["server_cpu"]
                out["server_rss_end"] = float(self._server.rss())
        return out

    def _report(self, w: dict[str, float], rss_start: int, wall: float) -> dict[str, Any]:
        s, o = self.stats, self.o
        seconds = w.get("seconds", 0.0)

        def rate(n: float) -> float:
            return n / seconds if seconds > 0 else 0.0

        added: dict[str, float] | None = None
        if o.pace_ms is not None:
            pace = o.pace_ms / 1000
            added = percentiles([max(0.0, g - pace) for g in s.gaps])
        verification = {
            "streams_checked": s.checked,
            "missing": s.missing,
            "duplicate": s.duplicate,
            "bad_id": s.bad_id,
            "no_done": s.no_done,
            "wrong_count": s.wrong_count,
            "events_per_stream": dict(sorted(s.counts.items())[:5]),
        }
        verification["ok"] = (
            s.checked > 0 and s.missing == s.duplicate == s.bad_id == s.no_done == 0
            and s.wrong_count == 0
        )
        report: dict[str, Any] = {
            "url": o.url, "mode": o.mode, "connections": o.connections,
            "drop_after": o.drop_after, "pace_ms": o.pace_ms, "wall_s": wall,
            "window_s": seconds,
            "events": int(w.get("events", 0)), "events_per_s": rate(w.get("events", 0)),
            "messages": int(w.get("messages", 0)), "messages_per_s": rate(w.get("messages", 0)),
            "bytes_per_s": rate(w.get("bytes", 0)),
            "ttfe_ms": percentiles(s.ttfe), "inter_event_ms": percentiles(s.gaps),
            "added_latency_ms": added,
            "streams": {"started": s.started, "completed": s.completed, "cut": s.cut,
                        "failed": s.failed, "resumes": s.resumes},
            "errors": dict(s.errors), "verification": verification,
            "peak_connections": s.peak_connections,
            "ramp_s": s.ramp_s or None,
            "loadgen": {"cpu_s": w.get("cpu", 0.0),
                        "cpu_pct": 100 * w.get("cpu", 0.0) / seconds if seconds else 0.0},
        }
        if self._server is not None and "server_cpu" in w:
            cpu = w["server_cpu"]
            peak = int(w.get("peak_rss", 0))
            report["server"] = {
                "pid": self._server.pid, "cpu_s": cpu,
                "cpu_pct": 100 * cpu / seconds if seconds else 0.0,
                "events_per_cpu_s": w["events"] / cpu if cpu else 0.0,
                "messages_per_cpu_s": w["messages"] / cpu if cpu else 0.0,
                "rss_start": rss_start, "rss_peak": peak,
                "rss_per_conn": (peak - rss_start) / max(1, s.peak_connections),
            }
        return report


def _collect(into: list[bytes], data: bytes) -> None:
    if sum(map(len, into)) < _MAX_COLLECTED:
        into.append(data)


def _raise_nofile_limit() -> None:
    """Thousands of connections need as many file descriptors: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- command line -----------------------------------------------------------------------------


def format_report(r: dict[str, Any]) -> str:
    """The human-readable summary."""

    def pct(d: dict[str, float] | None) -> str:
        if not d:
            return "-"
        return (f"p50 {d['p50']:.1f}  p90 {d['p90']:.1f}  p99 {d['p99']:.1f}  "
                f"max {d['max']:.1f} ms  (n={int(d['n'])})")

    v = r["verification"]
    st = r["streams"]
    lines = [
        f"{r['mode']} {r['url']}: {r['connections']} connections, "
        f"window {r['window_s']:.1f} s (run {r['wall_s']:.1f} s)",
        f"events        {r['events']:,} ({r['events_per_s']:,.0f}/s), messages "
        f"{r['messages']:,} ({r['messages_per_s']:,.0f}/s), {r['bytes_per_s'] / 1e6:.2f} MB/s",
        f"streams       started {st['started']}, completed {st['completed']}, "
        f"cut at the end {st['cut']}, failed {st['failed']}, resumes {st['resumes']}; "
        f"all {r['connections']} connections open after "
        + (f"{r['ramp_s']:.2f} s" if r["ramp_s"] else "- (never at once)"),
        f"first event   {pct(r['ttfe_ms'])}",
        f"inter-event   {pct(r['inter_event_ms'])}",
    ]
    if r["added_latency_ms"] is not None:
        lines.append(f"added latency {pct(r['added_latency_ms'])}  (gap - {r['pace_ms']} ms)")
    errors = ", ".join(f"{k} {n}" for k, n in sorted(r["errors"].items())) or "none"
    lines.append(f"errors        {errors}")
    lines.append(
        f"verification  {'OK' if v['ok'] else 'FAILED'}: {v['streams_checked']} streams, "
        f"missing {v['missing']}, duplicate {v['duplicate']}, bad id {v['bad_id']}, "
        f"without done {v['no_done']}, wrong count {v['wrong_count']}"
    )
    if "server" in r:
        sv = r["server"]
        lines.append(
            f"server        pid {sv['pid']}: {sv['cpu_s']:.2f} CPU-s ({sv['cpu_pct']:.0f}% of a "
            f"core), {sv['events_per_cpu_s']:,.0f} events per CPU-second, RSS "
            f"{sv['rss_start'] / 2**20:.1f} -> peak {sv['rss_peak'] / 2**20:.1f} MiB "
            f"({sv['rss_per_conn'] / 1024:.1f} KiB per connection)"
        )
    lg = r["loadgen"]
    lines.append(f"loadgen       {lg['cpu_s']:.2f} CPU-s ({lg['cpu_pct']:.0f}% of a core)"
                 + (f" on {lg['loop']}" if "loop" in lg else ""))
    if lg["cpu_pct"] > 90:
        lines.append("warning: the load generator was busy >90% of the window; "
                     "the numbers above are a floor, not the server's limit")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sseserver.loadgen",
        description="Load an SSE server and verify every stream it sends.",
    )
    p.add_argument("url", nargs="?", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("-c", "--connections", type=int, default=50,
                   help="concurrent connections, each running streams one after another")
    run = p.add_mutually_exclusive_group()
    run.add_argument("-d", "--duration", type=float, help="seconds to run (streams loop)")
    run.add_argument("-n", "--streams", type=int, help="streams to run in all, then stop")
    p.add_argument("--warmup", type=float,
                   help="seconds before measuring (default 1 with --duration, else 0)")
    p.add_argument("--measure", type=float, help="seconds to measure (default: the rest)")
    p.add_argument("--mode", choices=("sse", "streams"), default="sse",
                   help="sse: GET /api/sse?message=; streams: POST /api/streams, then GET it")
    p.add_argument("--message", default="Hello", help="the user message sent")
    p.add_argument("--drop-after", type=int, default=0, metavar="N",
                   help="cut each connection after N events, resume with Last-Event-ID")
    p.add_argument("--expect-events", type=int, help="events every stream must have")
    p.add_argument("--expect-messages", type=int, help="message events every stream must have")
    p.add_argument("--pace-ms", type=float,
                   help="the source's delay per token; enables the added-latency report")
    p.add_argument("--server-pid", type=int, help="report this process's CPU and RSS")
    p.add_argument("--connect-concurrency", type=int, default=100,
                   help="connects in flight at once (the server's listen backlog is finite)")
    p.add_argument("--timeout", type=float, help="hard bound on the run, in seconds")
    p.add_argument("-H", "--header", action="append", default=[],
                   help="extra request header, e.g. 'Authorization: Bearer T'")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="event loop: auto = uvloop when installed, so the load generator "
                        "keeps idle CPU (default: auto)")
    return p


def _loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The event loop to run on: uvloop costs the load generator less CPU per event, so
    it stays further from being the bottleneck (issue 6). Optional: stdlib-only runs work."""
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--loop uvloop: uvloop is not installed") from None
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration is None and args.streams is None:
        args.duration = 10.0
    options = Options(
        url=args.url, connections=args.connections, duration=args.duration,
        streams=args.streams, warmup=args.warmup, measure=args.measure, mode=args.mode,
        message=args.message, drop_after=args.drop_after, expect_events=args.expect_events,
        expect_messages=args.expect_messages, pace_ms=args.pace_ms,
        server_pid=args.server_pid, connect_concurrency=args.connect_concurrency,
        timeout=args.timeout, headers=tuple(args.header),
    )
    try:
        loop_name, factory = _loop_factory(args.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            report = runner.run(LoadGen(options).run())
        report["loadgen"]["loop"] = loop_name
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else format_report(report))
    ok = report["verification"]["ok"] and not report["errors"]
    return 0 if ok else 1


__all__ = ["LoadGen", "Options", "ResponseParser", "SseDecoder", "StreamCheck", "main"]

if __name__ == "__main__":
    sys.exit(main())
