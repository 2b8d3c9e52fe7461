"""Names for streams in Redis (`StreamStore.bind`): `<p>name:{<name>}`, a string holding
the id of the stream it points at, with that stream's lifetime.

A running stream's keys expire RUNNING_TTL_MS after their owner last refreshed them; the
owner refreshes its streams' names with them, and at the stream's end gives the name the
same time to live as the stream's keys (the resume window). Every change is
compare-and-set on the stream id, so a stream that ends after its name was bound to a newer
one leaves the newer binding alone. A name whose stream was freed early (to stay under
--resume-max-mb) reads as unbound: `bound` checks that the stream is still held.

A name and its stream are in different slots (keyspace.py): the name is read or set by one
command, the stream looked up by another; only RELEASE, on the name alone, is a script.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from ...errors import StoreUnavailable
from .connection import unavailable
from .keyspace import StreamKeys, name_key
from .shards import Shards, script

log = logging.getLogger("sseserver.redis")

# ARGV[2]: 0 to delete the name, else its time to live in ms.
RELEASE: Final = """
-- KEYS: name; ARGV: stream id, keep ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class Names:
    """The name keys of one store; `owned` maps this process's running streams to theirs."""

    def __init__(self, shards: Shards, prefix: str, running_ms: int) -> None:
        self._shards = shards
        self._prefix = prefix
        self._running_ms = running_ms
        self._release = script(RELEASE)
        self.owned: dict[str, str] = {}  # stream id -> its name key, until its end

    def key(self, name: str) -> str:
        return name_key(self._prefix, name)

    async def _held(self, stream_id: str) -> bool:
        meta = StreamKeys(self._prefix, stream_id).meta
        return bool(await self._shards.run(meta, lambda client: client.exists(meta)))

    async def bind(self, name: str, stream_id: str) -> str | None:
        """Point the name at the stream; the stream it pointed at, if that is still held."""
        key = self.key(name)
        async with unavailable():
            before = await self._shards.run(key, lambda client: client.set(
                key, stream_id, px=self._running_ms, get=True))
            self.owned[stream_id] = key
            if not before or before.decode() == stream_id:
                return None
            return before.decode() if await self._held(before.decode()) else None

    async def bound(self, name: str) -> str | None:
        key = self.key(name)
        async with unavailable():
            stream_id = await self._shards.run(key, lambda client: client.get(key))
            if not stream_id:
                return None
            if await self._held(stream_id.decode()):
                return str(stream_id.decode())
            await self._shards.script(self._release, [key], [stream_id, 0])
        return None

    async def unbind(self, name: str, stream_id: str) -> None:
        key = self.key(name)
        async with unavailable():
            await self._shards.script(self._release, [key], [stream_id, 0])

    def refresh(self) -> list[tuple[str, Any]]:
        """With the owner's running streams' keys (a newer binding only gains a little)."""
        return [(key, lambda pipe, key=key: pipe.pexpire(key, self._running_ms))
                for key in self.owned.values()]

    async def ended(self, stream_id: str, keep_ms: int) -> None:
        """The stream ends: its name (if it still points at it) lives as long as its keys.
        Never raises: a name not given its keep time lapses with its running time."""
        key = self.owned.pop(stream_id, None)
        if key is None:
            return
        try:
            async with unavailable():
                await self._shards.script(self._release, [key], [stream_id, keep_ms])
        except StoreUnavailable as exc:
            log.debug("redis: could not keep the name of %s: %s", stream_id, exc)


class NamedStreams:
    """`StreamStore.bind`, `bound` and `unbind` for RedisStore, which holds `_names`."""

    _names: Names

    async def bind(self, name: str, stream_id: str) -> str | None:
        return await self._names.bind(name, stream_id)

    async def bound(self, name: str) -> str | None:
        return await self._names.bound(name)

    async def unbind(self, name: str, stream_id: str) -> None:
        await self._names.unbind(name, stream_id)
