"""The names of the files a code run created, found while the reply goes on.

A code execution result names the files it created by id only; their names are in the
Files API (`GET /v1/files/{id}`, beta `files-api-2025-04-14`). A `tool_result` that lists
files is held while their names are looked up (at once, each within LOOKUP_TIMEOUT), and
everything else of the reply goes on meanwhile: text does not wait on a name. Held results
are released in the order they came, each when its lookups are done; a name that cannot be
had (an error, a timeout, an id not shaped like one) is `null` (docs/protocol.md, "Server
tools").

The provider reads the upstream through `next_chunk`, which races the next read with the
lookups only while some are pending: otherwise it is the plain read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

from ..ids import API_ID
from .base import Event
from .messages_api import CONNECTION_ERRORS, MessagesAPI, UpstreamStatusError
from .server_tools import files_of

FILES_BETA: Final = "files-api-2025-04-14"
LOOKUP_TIMEOUT: Final = 5.0


class FileNames:
    __slots__ = ("_api", "_held", "_lookups", "_read", "_timeout")

    def __init__(self, api: MessagesAPI, timeout: float | None = None) -> None:
        self._api = api
        self._timeout = LOOKUP_TIMEOUT if timeout is None else timeout
        self._lookups: dict[str, asyncio.Task[str | None]] = {}
        self._held: deque[tuple[Event, list[asyncio.Task[str | None]]]] = deque()
        self._read: asyncio.Task[bytes] | None = None

    @property
    def busy(self) -> bool:
        """Some event is held, or a read started by `next_chunk` is still to be had."""
        return bool(self._held) or self._read is not None

    def hold(self, event: Event) -> bool:
        """Start looking up the names of the files `event` lists; True when it is held."""
        files = files_of(event.data) if event.name == "tool_result" else []
        if not files:
            return False
        tasks = []
        for file in files:
            file_id = str(file["file_id"])
            task = self._lookups.get(file_id)
            if task is None:
                task = asyncio.create_task(self._name(file_id))
                self._lookups[file_id] = task
            tasks.append(task)
        self._held.append((event, tasks))
        return True

    def ready(self) -> list[Event]:
        """The held events whose names are all found, from the first held on."""
        released = []
        while self._held and all(task.done() for task in self._held[0][1]):
            event, tasks = self._held.popleft()
            for file, task in zip(files_of(event.data), tasks, strict=True):
                file["name"] = task.result()
            released.append(event)
        return released

    async def next_chunk(self, reads: AsyncIterator[bytes]) -> bytes | None:
        """The upstream's next chunk, or None when a held event is ready first. The read
        is kept across calls, so nothing read is lost. Raises StopAsyncIteration at the
        end of the body."""
        if self._read is None:
            self._read = asyncio.ensure_future(reads.__anext__())
        pending = {task for _, tasks in self._held for task in tasks if not task.done()}
        await asyncio.wait({self._read, *pending}, return_when=asyncio.FIRST_COMPLETED)
        if not self._read.done():
            return None
        read, self._read = self._read, None
        return read.result()

    def stop_reading(self) -> None:
        """Before the response closes: a read still waiting is cancelled."""
        if self._read is not None:
            self._read.cancel()
            self._read = None

    async def flush(self) -> list[Event]:
        """Every held event, once its lookups are done (each is bounded)."""
        pending = {task for _, tasks in self._held for task in tasks}
        if pending:
            await asyncio.wait(pending)
        return self.ready()

    def close(self) -> None:
        """The reply ended early: lookups still running are cancelled."""
        self.stop_reading()
        for task in self._lookups.values():
            task.cancel()

    async def _name(self, file_id: str) -> str | None:
        if not API_ID.fullmatch(file_id):  # else it could name another resource
            return None
        try:
            async with asyncio.timeout(self._timeout):
                metadata: Any = await self._api.get_json(
                    f"/v1/files/{file_id}", betas=(FILES_BETA,), timeout=self._timeout)
        except (UpstreamStatusError, *CONNECTION_ERRORS, ValueError):
            return None
        name = metadata.get("filename") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else None
