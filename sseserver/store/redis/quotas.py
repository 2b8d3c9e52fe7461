"""Quotas on Redis (store/quotas.py): the per-client limit and users' budgets, exact
across every process, each check and its count one script on one key.

    <p>slots:{<key>}             hash: process token -> generations it runs for `key`
    <p>budget:{user:<id>}:<w>    hash: uncached, cache_write, cache_read, output, counted
                                 (spent), and r:<token> -> tokens that process holds back

A count is kept per process so that a dead one's share can be told apart. A script may
touch only its own key (on a cluster the leases live in other slots), so the caller names
the processes known dead (`<p>dead`, filled by whoever buries one: liveness.py): every
check adds up the fields of the others and deletes the dead ones'. What a killed process
held is free again once its lease runs out and a beat has buried it, without waiting for
anyone to give it back.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from ...errors import StoreUnavailable
from ..quotas import Spent, Tally
from .connection import unavailable
from .keyspace import budget_key, slots_key
from .shards import Shards, script

log = logging.getLogger("sseserver.redis")

# A key of slots lives this long past its last change; a count of running generations
# changes at least at each reply's start and end.
SLOTS_TTL_MS: Final = 3_600_000

# Live holders' total first (a dead process's field is deleted), then the check and the
# count: 1 taken, 0 refused.
# ARGV[n+1]... : the tokens of processes known dead; `dead[token]` is true for them.
_DEAD_FROM: Final = """
local dead = {}
for i = %d, #ARGV do dead[ARGV[i]] = true end
"""

TAKE_SLOT: Final = """
-- KEYS: slots; ARGV: token, limit, ttl ms, then dead tokens
""" + _DEAD_FROM % 4 + """
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local holder = fields[i]
  if dead[holder] then
    redis.call('HDEL', KEYS[1], holder)
  else
    total = total + tonumber(fields[i + 1])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
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

# Reads the window as TALLY does; then holds back ARGV[4] when counted + held + ARGV[3]
# stays below ARGV[5]. Returns {taken, the five spent figures..., held}.
_READ_WINDOW: Final = """
local fields = redis.call('HGETALL', KEYS[1])
local spent = {uncached = 0, cache_write = 0, cache_read = 0, output = 0, counted = 0}
local held = 0
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  if string.sub(name, 1, 2) == 'r:' then
    local holder = string.sub(name, 3)
    if dead[holder] then
      redis.call('HDEL', KEYS[1], name)
    else
      held = held + value
    end
  else
    spent[name] = value
  end
end
"""
RESERVE: Final = """
-- KEYS: budget; ARGV: token, ttl ms, need, hold, budget, then dead tokens
""" + _DEAD_FROM % 6 + _READ_WINDOW + """
local taken = 0
if spent.counted + held + tonumber(ARGV[3]) < tonumber(ARGV[5]) then
  redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  taken = 1
end
return {taken, spent.uncached, spent.cache_write, spent.cache_read, spent.output,
        spent.counted, held}
"""
TALLY: Final = """
-- KEYS: budget; ARGV: token, then dead tokens
""" + _DEAD_FROM % 2 + _READ_WINDOW + """
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
    """Quotas for every process on one Redis or a cluster; `token` is this process's
    lease, `dead()` the tokens of processes known dead."""

    def __init__(self, shards: Shards, prefix: str, token: str,
                 dead: Callable[[], Sequence[str]]) -> None:
        self._shards = shards
        self._prefix = prefix
        self._token = token
        self._dead = dead
        self._take = script(TAKE_SLOT)
        self._give = script(GIVE_SLOTS)
        self._reserve = script(RESERVE)
        self._tally = script(TALLY)
        self._settle = script(SETTLE)
        # Slots whose release has not reached Redis yet, and the task sending them, by key:
        # a take of that key waits for it, so a slot just given back counts as free.
        self._owed: collections.Counter[str] = collections.Counter()
        self._releasing: dict[str, asyncio.Task[None]] = {}

    async def take_slot(self, key: str, limit: int) -> bool:
        releasing = self._releasing.get(key)
        if releasing is not None:
            await asyncio.shield(releasing)
        if self._owed[key]:  # a release Redis did not take before: its turn first
            await self._release(key)
        async with unavailable():
            taken = await self._shards.script(
                self._take, [slots_key(self._prefix, key)],
                [self._token, limit, SLOTS_TTL_MS, *self._dead()])
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
                    await self._shards.script(self._give, [slots_key(self._prefix, key)],
                                              [self._token, count])
            except StoreUnavailable as exc:
                self._owed[key] += count
                log.debug("redis: could not release %d slot(s): %s", count, exc)
                return

    async def reserve(self, user: str, window: int, need: int, hold: int, budget: int,
                      ttl: float) -> tuple[bool, Tally]:
        async with unavailable():
            reply = await self._shards.script(
                self._reserve, [budget_key(self._prefix, user, window)],
                [self._token, round(ttl * 1000), need, hold, budget, *self._dead()])
        return bool(reply[0]), _tally(reply)

    async def settle(self, user: str, window: int, hold: int, spent: Spent,
                     ttl: float) -> None:
        figures = [getattr(spent, kind) for kind in _KINDS]
        async with unavailable():
            await self._shards.script(self._settle, [budget_key(self._prefix, user, window)],
                                      [self._token, round(ttl * 1000), hold, *figures])

    async def tally(self, user: str, window: int) -> Tally:
        async with unavailable():
            reply = await self._shards.script(
                self._tally, [budget_key(self._prefix, user, window)],
                [self._token, *self._dead()])
        return _tally(reply)


def _tally(reply: list[Any]) -> Tally:
    numbers = [int(value) for value in reply[1:]]
    return Tally(Spent(*numbers[:5]), numbers[5])
