"""Presence: which processes have subscribers of a stream, so that its owner hears when the
first one came (BUSY) and the last one left (IDLE), wherever they are.

Presence is a set of process tokens per stream, not a counter: a process counts its own
subscribers and joins the set on 0 → 1 and leaves it on 1 → 0. A process that dies is taken
out of every set by whoever buries it (liveness.py), which tells the owners too.

The stream's set (its slot) and the process's own list of what it serves (the process's
slot) are written by two commands at once, not one script: on a cluster they live on
different masters. The process's list only tells a survivor what to clean up after it.
"""

from __future__ import annotations

import asyncio
import logging

from ...errors import StoreUnavailable
from .connection import unavailable
from .keyspace import ProcessKeys, StreamKeys
from .scripts import JOIN, LEAVE
from .shards import Shards, script

log = logging.getLogger("sseserver.redis")


class _StreamPresence:
    """This process's subscribers of one stream, and whether Redis lists us for it."""

    __slots__ = ("count", "lock", "present", "users")

    def __init__(self) -> None:
        self.count = 0
        self.present = False
        self.lock = asyncio.Lock()
        self.users = 0


class Presence:
    def __init__(self, shards: Shards, prefix: str, token: str) -> None:
        self._shards = shards
        self._prefix = prefix
        self._token = token
        self._control_prefix = prefix + "ctl:"
        self._subs_key = ProcessKeys(prefix, token).subs
        self._join = script(JOIN)
        self._leave = script(LEAVE)
        self._streams: dict[str, _StreamPresence] = {}
        self._dirty: set[str] = set()  # presence Redis may not know yet
        self._background: set[asyncio.Future[None]] = set()  # shielded leaves

    async def join(self, stream_id: str) -> None:
        presence = self._streams.setdefault(stream_id, _StreamPresence())
        presence.count += 1
        await self._sync(stream_id, presence)

    async def leave(self, stream_id: str) -> None:
        presence = self._streams.get(stream_id)
        if presence is None or presence.count == 0:
            return
        presence.count -= 1
        # Shielded: leave() runs in the `finally` of a handler that the client's disconnect
        # cancelled, and a second cancel must not cut the script off halfway (Redis would
        # list us as present with nobody here, and the owner never hears IDLE).
        sync = asyncio.ensure_future(self._leave_now(stream_id, presence))
        self._background.add(sync)
        sync.add_done_callback(self._background.discard)
        await asyncio.shield(sync)

    async def _leave_now(self, stream_id: str, presence: _StreamPresence) -> None:
        try:
            await self._sync(stream_id, presence)
        except StoreUnavailable as exc:
            log.info("redis: leave of %s deferred: %s", stream_id, exc)
            self._dirty.add(stream_id)

    def forget(self) -> None:
        """Redis lost our presence (our lease lapsed and we were buried, or it lost its
        data): tell it again at the next catch-up."""
        for stream_id, presence in self._streams.items():
            presence.present = False
            self._dirty.add(stream_id)

    async def catch_up(self) -> None:
        for stream_id in list(self._dirty):
            presence = self._streams.get(stream_id)
            if presence is not None:
                await self._sync(stream_id, presence)
            self._dirty.discard(stream_id)

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        self._streams.clear()

    async def _sync(self, stream_id: str, presence: _StreamPresence) -> None:
        """Make Redis list this process for the stream iff it has subscribers here.
        Serialised per stream, so a quick join and leave cannot reach Redis swapped."""
        presence.users += 1
        try:
            async with presence.lock:
                wanted = presence.count > 0
                if wanted == presence.present:
                    return
                lua = self._join if wanted else self._leave
                keys = StreamKeys(self._prefix, stream_id)
                args = [self._token, stream_id, self._control_prefix]
                try:
                    async with unavailable():
                        held, _ = await asyncio.gather(
                            self._shards.script(lua, [keys.meta, keys.subs], args),
                            self._shards.run(self._subs_key, lambda client: (
                                client.sadd if wanted else client.srem
                            )(self._subs_key, stream_id)),
                        )
                except StoreUnavailable:
                    # The command may have run all the same: count ourselves listed, so
                    # that a later leave takes us out (leaving is idempotent).
                    presence.present = True
                    raise
                presence.present = wanted and bool(held)
        finally:
            presence.users -= 1
            idle = not (presence.users or presence.count or presence.present)
            if idle and self._streams.get(stream_id) is presence:
                del self._streams[stream_id]


