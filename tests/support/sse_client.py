"""A test client for SSE responses: aiohttp for HTTP, the WHATWG parser for the body.

It keeps the raw body bytes too, so tests can assert on the exact wire format, and it can
close its connection at any point, as a user closing a tab would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from ssl import SSLContext
from types import TracebackType

import aiohttp

from .sse_parser import SSEEvent, SSEParser


class SSEStream:
    def __init__(self, session: aiohttp.ClientSession, response: aiohttp.ClientResponse) -> None:
        self._session = session
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self.parser = SSEParser()
        self.raw = bytearray()
        self.events: list[SSEEvent] = []
        self._pending: list[SSEEvent] = []
        self.eof = False

    async def next_event(self, timeout: float = 5.0) -> SSEEvent | None:
        """The next event, or None when the response ended first."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                chunk = await self.response.content.readany()
                if not chunk:
                    self.eof = True
                    return None
                self.raw += chunk
                self._pending.extend(self.parser.feed(chunk))
        event = self._pending.pop(0)
        self.events.append(event)
        return event

    async def wait_for_bytes(self, marker: bytes, timeout: float = 5.0) -> None:
        """Read until `marker` is in the raw body (for comments, which are not events)."""
        async with asyncio.timeout(timeout):
            while marker not in self.raw:
                chunk = await self.response.content.readany()
                assert chunk, f"the response ended before {marker!r}"
                self.raw += chunk
                self._pending.extend(self.parser.feed(chunk))

    async def take(self, count: int, timeout: float = 5.0) -> list[SSEEvent]:
        taken: list[SSEEvent] = []
        for _ in range(count):
            event = await self.next_event(timeout)
            assert event is not None, f"stream ended after {len(taken)} of {count} events"
            taken.append(event)
        return taken

    async def read_all(self, timeout: float = 10.0) -> list[SSEEvent]:
        """Every event until the server ends the response."""
        async with asyncio.timeout(timeout):
            while await self.next_event(timeout) is not None:
                pass
        return self.events

    @property
    def text(self) -> str:
        """The reply so far: every `message` event's JSON string, joined."""
        return "".join(json.loads(e.data) for e in self.events if e.type == "message")

    @property
    def last_id(self) -> str:
        return self.events[-1].last_event_id

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    async def close(self) -> None:
        self.response.close()
        await self._session.close()

    async def __aenter__(self) -> SSEStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_sse(
    url: str, headers: Mapping[str, str] | None = None, method: str = "GET", *,
    body: bytes | None = None, ssl: SSLContext | bool = True,
) -> SSEStream:
    """Open a stream on its own connection (so closing it is a real TCP close); `body` is
    sent as JSON (POST /api/chat answers with a stream); `ssl` as aiohttp takes it (a
    context that trusts a test's own certificate)."""
    if body is not None:
        headers = {"Content-Type": "application/json", **(headers or {})}
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True, ssl=ssl),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
    )
    try:
        response = await session.request(method, url, headers=headers, data=body)
    except BaseException:
        await session.close()
        raise
    return SSEStream(session, response)
