"""Every Lua script of the Redis store on a real Redis Cluster: each names every key it
touches in KEYS, all of one slot (store/redis/keyspace.py), so the cluster runs it; and the
cluster does refuse a script that reaches a key of another slot, so passing means
something."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from sseserver.store.redis import names, scripts
from sseserver.store.redis.keyspace import ProcessKeys, StreamKeys, name_key
from sseserver.store.redis.shards import Shards, script

PREFIX = "t:"


async def test_every_script_runs_on_a_cluster_with_its_keys_declared(
    redis_cluster_url: str,
) -> None:
    shards = Shards(redis_cluster_url, "scripts")
    stream = StreamKeys(PREFIX, "s1")
    process = ProcessKeys(PREFIX, "p1")
    calls: list[tuple[str, list[str], list[object]]] = [
        (scripts.CREATE, [stream.meta], ["p1", 60000]),
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
    ]
    try:
        for source, keys, args in calls:
            await shards.script(script(source), keys, args)
        # END ended the stream, so FORGET freed it.
        assert await shards.run(stream.meta, lambda c: c.exists(stream.meta)) == 0

        # The control: a script reaching a key it did not declare, in another slot.
        other = StreamKeys(PREFIX, "s2").meta
        sneaky = script("return redis.call('EXISTS', ARGV[1])")
        with pytest.raises(ResponseError, match=r"(non local key|same slot)"):
            await shards.script(sneaky, [stream.meta], [other])
    finally:
        await shards.aclose()
