"""Names for streams in Redis (`StreamStore.bind`): `<p>name:<name>`, a string holding
the id of the stream it points at, with that stream's lifetime.

A running stream's keys expire RUNNING_TTL_MS after their owner last refreshed them; the
owner refreshes its streams' names with them, and at the stream's end gives the name the
same time to live as the stream's keys (the resume window). Every change is
compare-and-set on the stream id, so a stream that ends after its name was bound to a newer
one leaves the newer binding alone. A name whose stream was freed early (to stay under
--resume-max-mb) reads as unbound: `bound` checks that the stream is still held.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from ...errors import StoreUnavailable
from .connection import unavailable

log = logging.getLogger("sseserver.redis")

# 0 or the previous stream when it is still held.
BIND: Final = """
-- KEYS: name; ARGV: stream id, running ttl ms, key prefix
local before = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if before and before ~= ARGV[1]
   and redis.call('EXISTS', ARGV[3] .. '{' .. before .. '}:meta') == 1 then
  return before
end
return false
"""

BOUND: Final = """
-- KEYS: name; ARGV: key prefix
local sid = redis.call('GET', KEYS[1])
if not sid then return false end
if redis.call('EXISTS', ARGV[1] .. '{' .. sid .. '}:meta') == 0 then
  redis.call('DEL', KEYS[1])
  return false
end
return sid
"""

# ARGV[2]: 0 to delete the name, else its time to live in ms.
RELEASE: Final = """
-- KEYS: name; ARGV: stream id, keep ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class Names:
    """The name keys of one store; `owned` maps this process's running streams to theirs."""

    def __init__(self, redis: Any, prefix: str, running_ms: int) -> None:
        self._prefix = prefix
        self._running_ms = running_ms
        self._bind = redis.register_script(BIND)
        self._bound = redis.register_script(BOUND)
        self._release = redis.register_script(RELEASE)
        self.owned: dict[str, str] = {}  # stream id -> its name key, until its end

    def key(self, name: str) -> str:
        return f"{self._prefix}name:{name}"

    async def bind(self, name: str, stream_id: str) -> str | None:
        key = self.key(name)
        async with unavailable():
            before = await self._bind(keys=[key],
                                      args=[stream_id, self._running_ms, self._prefix])
        self.owned[stream_id] = key
        return before.decode() if before else None

    async def bound(self, name: str) -> str | None:
        async with unavailable():
            stream_id = await self._bound(keys=[self.key(name)], args=[self._prefix])
        return stream_id.decode() if stream_id else None

    async def unbind(self, name: str, stream_id: str) -> None:
        async with unavailable():
            await self._release(keys=[self.key(name)], args=[stream_id, 0])

    def refresh(self, pipe: Any) -> None:
        """With the owner's running streams' keys (a newer binding only gains a little)."""
        for key in self.owned.values():
            pipe.pexpire(key, self._running_ms)

    async def ended(self, stream_id: str, keep_ms: int) -> None:
        """The stream ends: its name (if it still points at it) lives as long as its keys.
        Never raises: a name not given its keep time lapses with its running time."""
        key = self.owned.pop(stream_id, None)
        if key is None:
            return
        try:
            async with unavailable():
                await self._release(keys=[key], args=[stream_id, keep_ms])
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
