"""Every Lua script of the Redis store on a real Redis Cluster: each names every key it
touches in KEYS, all of one slot (store/redis/keyspace.py), so the cluster runs it; and the
cluster does refuse a script that reaches a key of another slot, so passing means
something. The scripts run are checked against every script the store's modules define, so
a new one cannot be left out."""

from __future__ import annotations

import pkgutil
from importlib import import_module

import pytest
from redis.exceptions import ResponseError

import sseserver.store.redis
from sseserver.store.redis import names, quotas, scripts
from sseserver.store.redis.keyspace import (
    ProcessKeys,
    StreamKeys,
    budget_key,
    name_key,
    slots_key,
)
from sseserver.store.redis.shards import Shards, script

PREFIX = "t:"


def _every_script() -> set[str]:
    """The Lua of every public script constant in the Redis store's modules."""
    found: set[str] = set()
    for module in pkgutil.iter_modules(sseserver.store.redis.__path__):
        loaded = import_module(f"sseserver.store.redis.{module.name}")
        for name, value in vars(loaded).items():
            if name.isupper() and not name.startswith("_") and isinstance(value, str) \
                    and "redis.call" in value:
                found.add(value)
    return found


async def test_every_script_runs_on_a_cluster_with_its_keys_declared(
    redis_cluster_url: str,
) -> None:
    shards = Shards(redis_cluster_url, "scripts")
    stream = StreamKeys(PREFIX, "s1")
    process = ProcessKeys(PREFIX, "p1")
    calls: list[tuple[str, list[str], list[object]]] = [
        (scripts.JOIN, [stream.meta, stream.subs], ["p2", "s1", PREFIX + "ctl:"]),
        (scripts.READ, [stream.log, stream.meta], [1, 10]),
        (scripts.LEAVE, [stream.meta, stream.subs], ["p2", "s1", PREFIX + "ctl:"]),
        (scripts.CANCEL, [stream.meta], ["s1", PREFIX + "ctl:"]),
        (scripts.END, [stream.log, stream.meta, stream.subs],
         ["p1", 1, "done", 1000, "SPUBLISH"]),
        (scripts.BURY_STREAM, [stream.log, stream.meta, stream.subs], ["p1", 1000, "SPUBLISH"]),
        (scripts.DROP_PRESENCE, [stream.meta, stream.subs], ["p1", "s1", PREFIX + "ctl:"]),
        (scripts.FORGET, [stream.log, stream.meta, stream.subs], []),
        (scripts.BEAT, [process.lease, process.owns, process.subs], [4000, 60000]),
        (names.RELEASE, [name_key(PREFIX, "chat")], ["s1", 0]),
        (quotas.TAKE_SLOT, [slots_key(PREFIX, "u:alice")], ["p1", 3, 60000, "p9"]),
        (quotas.GIVE_SLOTS, [slots_key(PREFIX, "u:alice")], ["p1", 1]),
        (quotas.RESERVE, [budget_key(PREFIX, "alice", 7)],
         ["p1", 60000, 10, 100, 1000, "p9"]),
        (quotas.SETTLE, [budget_key(PREFIX, "alice", 7)], ["p1", 60000, 100, 1, 2, 3, 4, 5]),
        (quotas.TALLY, [budget_key(PREFIX, "alice", 7)], ["p1", "p9"]),
    ]
    assert {source for source, _, _ in calls} == _every_script()
    try:
        # The stream as its owner's writer creates it (plain commands, no script).
        await shards.run(stream.meta, lambda c: c.hset(stream.meta, "owner", "p1"))
        for source, keys, args in calls:
            await shards.script(script(source), keys, args)
        # END ended the stream, so FORGET freed it.
        assert await shards.run(stream.meta, lambda c: c.exists(stream.meta)) == 0
        # The budget holds what SETTLE counted, and nothing held back.
        budget = budget_key(PREFIX, "alice", 7)
        tally = await shards.script(script(quotas.TALLY), [budget], ["p1"])
        assert [int(n) for n in tally] == [1, 1, 2, 3, 4, 5, 0]

        # The control: a script reaching a key it did not declare, in another slot.
        other = StreamKeys(PREFIX, "s2").meta
        sneaky = script("return redis.call('EXISTS', ARGV[1])")
        with pytest.raises(ResponseError, match=r"(non local key|same slot)"):
            await shards.script(sneaky, [stream.meta], [other])
    finally:
        await shards.aclose()
