"""The process's list of the streams it generates (`<p>{proc:<token>}:owns`), which a
survivor reads to end them as lost if the process dies (liveness.py).

Each creation adds to it and each end removes from it. Sent one by one, that is two round
trips per stream to the master holding the process's keys, which at Claude's pace made
that master answer as many reads as the frames' masters together. So additions and
removals are gathered: one `SADD` and one `SREM` per batch, batches at least
BATCH_INTERVAL apart (log.py's rule: an idle list sends at once). A creation still waits
until its stream is listed, so a stream is never running unlisted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...errors import StoreUnavailable
from .connection import unavailable
from .log import BATCH_INTERVAL
from .shards import Shards

log = logging.getLogger("sseserver.redis")


class OwnList:
    """Batched additions to and removals from one process's list of its streams."""

    def __init__(self, shards: Shards, key: str) -> None:
        self._shards = shards
        self._key = key
        self._added: list[str] = []
        self._removed: list[str] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._next_batch = 0.0

    async def add(self, stream_id: str) -> None:
        """List the stream; returns once Redis has it (StoreUnavailable if it cannot)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._added.append(stream_id)
        self._waiters.append(waiter)
        self._start()
        await waiter

    def remove(self, stream_id: str) -> None:
        """Unlist the stream, soon. Never raises: one left listed is only looked at by a
        survivor, whose end script finds it ended already."""
        self._removed.append(stream_id)
        self._start()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send(), name="redis own list")

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._added or self._removed:
            wait = self._next_batch - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_batch = loop.time() + BATCH_INTERVAL
            added, self._added = self._added, []
            removed, self._removed = self._removed, []
            waiters, self._waiters = self._waiters, []
            failure = await self._batch(added, removed)
            if failure is not None and removed:
                log.debug("redis: could not unlist %d stream(s): %s", len(removed), failure)
            for waiter in waiters:
                if not waiter.done():
                    if failure is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(failure)

    async def _batch(self, added: list[str], removed: list[str]) -> StoreUnavailable | None:
        """One SADD and one SREM (either may be empty), in one round trip; what failed."""
        key = self._key
        calls: list[tuple[str, Any]] = []
        if added:
            calls.append((key, lambda pipe: pipe.sadd(key, *added)))
        if removed:
            calls.append((key, lambda pipe: pipe.srem(key, *removed)))
        try:
            async with unavailable():
                answers = await self._shards.pipeline(calls)
        except StoreUnavailable as exc:
            return exc
        error = next((a for a in answers if isinstance(a, Exception)), None)
        return None if error is None else StoreUnavailable(f"redis: {error}")

    async def close(self) -> None:
        """Send what is pending (briefly), then stop."""
        task = self._task
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(1.0):
                    await asyncio.shield(task)
            except (TimeoutError, StoreUnavailable):
                task.cancel()
