"""The client side of HTTP/1.1, just what the load needs: one `asyncio.Protocol` per
connection, carrying one request at a time, and a response parser fed from its data
callback (status, headers, then a chunked, length-delimited or close-delimited body).

No task, future or timer per event: the body goes from `data_received` through the parser
to the sink the caller chose (an `SseDecoder` for a stream), all in one callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from .stats import Stats

_MAX_HEAD: Final = 64 * 1024


class ProtocolError(Exception):
    """The server broke HTTP/1.1 framing."""



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


class ConnectionLost(Exception):
    """The connection closed before the response was complete."""


class Connection(asyncio.Protocol):
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
