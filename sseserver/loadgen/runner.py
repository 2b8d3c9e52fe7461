"""One load run: `await LoadGen(options).run()` opens the connections, runs the streams
(looping for a duration, or a fixed count), measures a window and returns the report.

Each of `connections` workers runs streams one after another on a keep-alive connection:
a GET of `/api/sse?message=`, or in `streams` mode a POST of `/api/streams` and a GET of
the URL it answers. With `drop_after`, every connection is cut after that many events and
the stream resumed with Last-Event-ID on a new one, which the stream's check follows.

The window (after `warmup`, for `measure` seconds or the rest of the run) is where rates,
timings and the CPU of this process and of `--server-pid` are taken, so the ramp-up and
the last streams' tails do not dilute them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

from .checks import StreamCheck
from .decoder import SseDecoder
from .protocol import Connection, ConnectionLost, ProtocolError, ResponseParser
from .report import build_report
from .stats import ProcStats, Stats

# Bodies of non-SSE answers (errors, the POST's JSON) are kept up to this size.
_MAX_COLLECTED: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Options:
    """One run's settings, field for field the command line's options (see `cli.py`)."""

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
    honor_retry_after: bool = False


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
        self._server = ProcStats(options.server_pid) if options.server_pid else None
        self._window_end = asyncio.Event()
        self._t0 = 0.0
        self._retry_after = 0.0  # the last refusal's Retry-After

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

    async def _connect(self) -> Connection:
        # The slot is held until the server answers on the new connection, not just until
        # the handshake: the kernel completes handshakes for a server that has not accepted
        # yet, and a burst past its listen backlog costs 1 s SYN retransmits (a ramp
        # artefact, not what the bench's idle-stream scenarios measure).
        await self._connect_gate.acquire()
        try:
            loop = asyncio.get_running_loop()
            since = time.perf_counter()
            _, conn = await loop.create_connection(
                lambda: Connection(self.stats), self._host, self._port
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
        conn: Connection | None = None
        try:
            while self._take():
                conn = await self._one_stream(conn)
        finally:
            if conn is not None:
                conn.abort()

    async def _one_stream(self, conn: Connection | None) -> Connection | None:
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
                    await self._back_off()
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
                    if check.events:
                        self._finish(check, ok=False)
                    else:
                        stats.failed += 1  # refused before it began: an error, not a wrong stream
                    self._note_refusal(parser)
                    await self._back_off()
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

    async def _create(self, conn: Connection) -> tuple[str | None, Connection | None]:
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
            self._note_refusal(parser)
            return None, keep
        try:
            url = json.loads(b"".join(collected))["url"]
        except (ValueError, KeyError, TypeError):
            self.stats.errors["bad_create_answer"] += 1
            return None, keep
        return str(url), keep

    def _note_refusal(self, parser: ResponseParser) -> None:
        """A 429 or 503 names when to come back; with --honor-retry-after the worker does."""
        retry_after = parser.headers.get("retry-after", "")
        if parser.status in (429, 503) and retry_after.isdigit():
            self._retry_after = float(retry_after)

    async def _back_off(self) -> None:
        """Retry-After, and up to as much again at random: clients refused together do not
        come back together."""
        wait, self._retry_after = self._retry_after, 0.0
        if self.o.honor_retry_after and wait > 0:
            await asyncio.sleep(wait * (1 + random.random()))

    def _finish(self, check: StreamCheck, *, ok: bool) -> None:
        check.finish(ok=ok, expect_events=self.o.expect_events,
                     expect_messages=self.o.expect_messages)

    # the run and its measuring window

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
        return build_report(self.o, self.stats, measured, rss_start, wall, self._server)

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


def _collect(into: list[bytes], data: bytes) -> None:
    if sum(map(len, into)) < _MAX_COLLECTED:
        into.append(data)


def _raise_nofile_limit() -> None:
    """Thousands of connections need as many file descriptors: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
