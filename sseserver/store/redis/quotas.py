"""Quotas on Redis (store/quotas.py): the per-client limit and users' budgets, exact
across every process, each check and its count one script.

    <p>slots:<key>             hash: process token -> generations it runs for `key`
    <p>budget:<window>:<user>  hash: uncached, cache_write, cache_read, output, counted
                               (spent), and r:<token> -> tokens that process holds back

A count is kept per process so that a dead one's share can be told apart: every check
adds up only the fields of processes whose lease (`<p>proc:<token>`, liveness.py) still
exists, and deletes the others, so what a killed process held is free again once its
lease runs out, without waiting for anyone to bury it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Final

from ...errors import StoreUnavailable
from ..quotas import Spent, Tally
from .connection import unavailable

log = logging.getLogger("sseserver.redis")

# A key of slots lives this long past its last change; a count of running generations
# changes at least at each reply's start and end.
SLOTS_TTL_MS: Final = 3_600_000

# Live holders' total first (a dead process's field is deleted), then the check and the
# count: 1 taken, 0 refused.
TAKE_SLOT: Final = """
-- KEYS: slots; ARGV: token, key prefix, limit, ttl ms
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local holder = fields[i]
  if holder == ARGV[1] or redis.call('EXISTS', ARGV[2] .. 'proc:' .. holder) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], holder)
  end
end
if total >= tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

GIVE_SLOTS: Final = """
-- KEYS: slots; ARGV: token, how many
if redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2])) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""

_KINDS: Final = ("uncached", "cache_write", "cache_read", "output", "counted")

# Reads the window as TALLY does; then holds back ARGV[5] when counted + held + ARGV[4]
# stays below ARGV[6]. Returns {taken, the five spent figures..., held}.
_READ_WINDOW: Final = """
local fields = redis.call('HGETALL', KEYS[1])
local spent = {uncached = 0, cache_write = 0, cache_read = 0, output = 0, counted = 0}
local held = 0
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  if string.sub(name, 1, 2) == 'r:' then
    local holder = string.sub(name, 3)
    if holder == ARGV[1] or redis.call('EXISTS', ARGV[2] .. 'proc:' .. holder) == 1 then
      held = held + value
    else
      redis.call('HDEL', KEYS[1], name)
    end
  else
    spent[name] = value
  end
end
"""
RESERVE: Final = _READ_WINDOW + """
-- KEYS: budget; ARGV: token, key prefix, ttl ms, need, hold, budget
local taken = 0
if spent.counted + held + tonumber(ARGV[4]) < tonumber(ARGV[6]) then
  redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  taken = 1
end
return {taken, spent.uncached, spent.cache_write, spent.cache_read, spent.output,
        spent.counted, held}
"""
TALLY: Final = _READ_WINDOW + """
-- KEYS: budget; ARGV: token, key prefix
return {1, spent.uncached, spent.cache_write, spent.cache_read, spent.output,
        spent.counted, held}
"""
SETTLE: Final = """
-- KEYS: budget; ARGV: token, ttl ms, hold, then the five spent figures
local holder = 'r:' .. ARGV[1]
if redis.call('HINCRBY', KEYS[1], holder, -tonumber(ARGV[3])) <= 0 then
  redis.call('HDEL', KEYS[1], holder)
end
local kinds = {'uncached', 'cache_write', 'cache_read', 'output', 'counted'}
for i, kind in ipairs(kinds) do
  if tonumber(ARGV[3 + i]) ~= 0 then redis.call('HINCRBY', KEYS[1], kind, ARGV[3 + i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisQuotas:
    """Quotas for every process on one Redis; `token` is this process's lease."""

    def __init__(self, redis: Any, prefix: str, token: str) -> None:
        self._prefix = prefix
        self._token = token
        self._take = redis.register_script(TAKE_SLOT)
        self._give = redis.register_script(GIVE_SLOTS)
        self._reserve = redis.register_script(RESERVE)
        self._tally = redis.register_script(TALLY)
        self._settle = redis.register_script(SETTLE)
        # Slots whose release has not reached Redis yet, and the task sending them, by key:
        # a take of that key waits for it, so a slot just given back counts as free.
        self._owed: collections.Counter[str] = collections.Counter()
        self._releasing: dict[str, asyncio.Task[None]] = {}

    def _slots(self, key: str) -> str:
        return f"{self._prefix}slots:{key}"

    def _budget(self, user: str, window: int) -> str:
        return f"{self._prefix}budget:{window}:{user}"

    async def take_slot(self, key: str, limit: int) -> bool:
        releasing = self._releasing.get(key)
        if releasing is not None:
            await asyncio.shield(releasing)
        if self._owed[key]:  # a release Redis did not take before: its turn first
            await self._release(key)
        async with unavailable():
            taken = await self._take(keys=[self._slots(key)],
                                     args=[self._token, self._prefix, limit, SLOTS_TTL_MS])
        return bool(taken)

    def give_slot(self, key: str) -> None:
        self._owed[key] += 1
        if key not in self._releasing:
            task = asyncio.create_task(self._release(key), name="redis slot release")
            self._releasing[key] = task
            task.add_done_callback(lambda _: self._releasing.pop(key, None))

    async def _release(self, key: str) -> None:
        """Send what is owed for `key`; what Redis does not take stays owed (our lease
        keeps it counted meanwhile) for the next take or release of the key."""
        while count := self._owed.pop(key, 0):
            try:
                async with unavailable():
                    await self._give(keys=[self._slots(key)], args=[self._token, count])
            except StoreUnavailable as exc:
                self._owed[key] += count
                log.debug("redis: could not release %d slot(s): %s", count, exc)
                return

    async def reserve(self, user: str, window: int, need: int, hold: int, budget: int,
                      ttl: float) -> tuple[bool, Tally]:
        async with unavailable():
            reply = await self._reserve(
                keys=[self._budget(user, window)],
                args=[self._token, self._prefix, round(ttl * 1000), need, hold, budget],
            )
        return bool(reply[0]), _tally(reply)

    async def settle(self, user: str, window: int, hold: int, spent: Spent,
                     ttl: float) -> None:
        figures = [getattr(spent, kind) for kind in _KINDS]
        async with unavailable():
            await self._settle(keys=[self._budget(user, window)],
                               args=[self._token, round(ttl * 1000), hold, *figures])

    async def tally(self, user: str, window: int) -> Tally:
        async with unavailable():
            reply = await self._tally(keys=[self._budget(user, window)],
                                      args=[self._token, self._prefix])
        return _tally(reply)


def _tally(reply: list[Any]) -> Tally:
    numbers = [int(value) for value in reply[1:]]
    return Tally(Spent(*numbers[:5]), numbers[5])
