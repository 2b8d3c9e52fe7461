"""Redis Cluster end to end (docs/operations.md, "Redis Cluster"): two `python -m
sseserver` processes on a 3-master cluster of their own: a master killed with SIGKILL
mid-load while its replica takes over, and slots of live streams moved to another master
mid-load.

Each test prints what it measured (run with -s to see it)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from redis.crc import key_slot

from sseserver.store.redis.liveness import HEARTBEAT_INTERVAL, PROCESS_LEASE

from .support.processes import Processes, ServerProcess
from .support.redis_cluster import ClusterNode, RedisCluster, require_redis_cluster_tools
from .support.sse_client import open_sse

TOKENS = 60
PACE_MS = 100
STREAMS = 48
# A stream of the failed master ends within the lease, after the replica took over.
LOST_BOUND = PROCESS_LEASE + HEARTBEAT_INTERVAL + 5.0
NEW_STREAMS_BOUND = 10.0
MOVED_SLOTS = 4


@pytest.fixture
async def own_cluster() -> AsyncIterator[RedisCluster]:
    """A cluster of this test's own, to kill a master of."""
    require_redis_cluster_tools()
    cluster = RedisCluster()
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        cluster.close()


@dataclass
class _Read:
    """Everything one client saw of one stream, across its reconnects."""

    events: list[tuple[str, str, str]] = field(default_factory=list)  # type, data, id
    reconnects: int = 0
    ended_at: float = 0.0

    @property
    def last(self) -> tuple[str, str, str]:
        return self.events[-1]

    def error_type(self) -> str | None:
        kind, data, _ = self.last
        return json.loads(data)["type"] if kind == "error" else None


async def _follow(server: ServerProcess, path: str, deadline: float) -> _Read:
    """Read the stream to its end, reconnecting with Last-Event-ID after an id-less
    `store_unavailable` (as EventSource would), until `deadline`."""
    read = _Read()
    last_id: str | None = None
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        stream = await open_sse(server.url + path, headers=headers)
        async with stream:
            if stream.status == 204:
                break
            assert stream.status == 200, stream.status
            await stream.read_all(timeout=max(0.1, deadline - time.monotonic()))
        for event in stream.events:
            read.events.append((event.type, event.data, event.last_event_id))
        if stream.events and stream.events[-1].type == "error" and json.loads(
                stream.events[-1].data)["type"] == "store_unavailable":
            last_id = stream.events[-1].last_event_id or last_id
            read.events.pop()
            read.reconnects += 1
            await asyncio.sleep(0.2)
            continue
        break
    read.ended_at = time.monotonic()
    return read


def _assert_exact(read: _Read, stream_id: str) -> None:
    """Event ids `<id>:0, 1, 2...` with none missing or repeated; the end is `done`, or a
    `generation_lost` error at the next index."""
    ids = [event_id for _, _, event_id in read.events]
    assert ids == [f"{stream_id}:{i}" for i in range(len(ids))], ids
    kind = read.last[0]
    assert kind == "done" or read.error_type() == "generation_lost", read.last


async def _post(server: ServerProcess, session: aiohttp.ClientSession) -> str | None:
    async with session.post(server.url + "/api/streams", json={
        "messages": [{"role": "user", "content": "hi"}]
    }) as response:
        if response.status == 503:
            return None
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


async def _two_with_streams(
    processes: Processes, cluster: RedisCluster,
) -> tuple[ServerProcess, ServerProcess, list[str]]:
    """Two processes on the cluster, and the paths of STREAMS streams the first started."""
    args = ("--redis-url", cluster.url, "--demo-delay-ms", str(PACE_MS),
            "--demo-tokens", str(TOKENS), "--resume-window", "5")
    a, b = [await processes.sseserver(None, *args) for _ in range(2)]
    async with aiohttp.ClientSession() as session:
        paths = [path for _ in range(STREAMS) if (path := await _post(a, session))]
    assert len(paths) == STREAMS
    return a, b, paths


def _master_of(cluster: RedisCluster, stream_id: str) -> ClusterNode:
    return cluster.master_of(f"sseserver:{{{stream_id}}}:meta".encode())


async def test_a_master_killed_mid_load_costs_only_its_own_streams(
    processes: Processes, own_cluster: RedisCluster,
) -> None:
    a, b, paths = await _two_with_streams(processes, own_cluster)
    ids = [path.rsplit("/", 1)[1] for path in paths]
    masters = {stream_id: _master_of(own_cluster, stream_id) for stream_id in ids}
    # Half followed on the owner, half on the other process (through its readers).
    deadline = time.monotonic() + TOKENS * PACE_MS / 1000 + LOST_BOUND + 20
    reads = [asyncio.create_task(_follow(a if i % 2 else b, path, deadline))
             for i, path in enumerate(paths)]
    await asyncio.sleep(1.5)
    victim = masters[ids[0]]
    killed_at = time.monotonic()
    victim.kill()

    # New streams on every shard within the bound, once the replica took over: a few
    # are started every quarter second, and each one is read to its end.
    started: list[tuple[str, float, asyncio.Task[_Read]]] = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - killed_at < NEW_STREAMS_BOUND:
            for server in (a, b):
                path = await _post(server, session)
                if path is not None:
                    started.append((path.rsplit("/", 1)[1], time.monotonic() - killed_at,
                                    asyncio.create_task(_follow(server, path, deadline))))
            await asyncio.sleep(0.25)
    served: dict[int, float] = {}
    for stream_id, after, task in started:
        new = await task
        _assert_exact(new, stream_id)
        if new.last[0] == "done":
            port = _master_of(own_cluster, stream_id).port
            served[port] = min(served.get(port, after), after)
    print(f"new streams served exactly on {len(served)} masters, on each from "
          f"{max(served.values(), default=0):.1f} s after the kill at the latest")
    assert len(served) == 3

    results = await asyncio.gather(*reads)
    hit = [(i, r) for i, r in enumerate(results) if masters[ids[i]] is victim]
    spared = [(i, r) for i, r in enumerate(results) if masters[ids[i]] is not victim]
    for i, read in enumerate(results):
        _assert_exact(read, ids[i])
    for i, read in spared:
        assert read.last[0] == "done", (ids[i], read.last)
        assert sum(kind == "message" for kind, _, _ in read.events) == TOKENS
        assert read.reconnects == 0
    lost = [read.ended_at - killed_at for _, read in hit if read.error_type()]
    print(f"{len(spared)} streams on other masters: all done, exact; {len(hit)} on the "
          f"killed one: {len(hit) - len(lost)} done exactly, {len(lost)} generation_lost "
          f"after {max(lost, default=0):.1f} s at most; reconnects "
          f"{sum(r.reconnects for _, r in hit)}")
    assert hit
    assert spared
    assert all(seconds <= LOST_BOUND for seconds in lost)


def _text(read: _Read) -> str:
    return "".join(json.loads(data) for kind, data, _ in read.events if kind == "message")


async def test_slots_moved_mid_load_lose_and_repeat_nothing(
    processes: Processes, own_cluster: RedisCluster,
) -> None:
    """The slots of live streams move to another master, key by key, while their owner
    writes them and followers on both processes read them: every stream ends `done`, with
    every event once, in order, and its full text."""
    a, b, paths = await _two_with_streams(processes, own_cluster)
    ids = [path.rsplit("/", 1)[1] for path in paths]
    deadline = time.monotonic() + TOKENS * PACE_MS / 1000 + 30
    reads = [asyncio.create_task(_follow(a if i % 2 else b, path, deadline))
             for i, path in enumerate(paths)]
    await asyncio.sleep(1.5)

    # The slots of four streams (two followed on each process), each to another master.
    masters = own_cluster.masters()
    moves = []
    for i in range(MOVED_SLOTS):
        stream_id = ids[i]
        source = _master_of(own_cluster, stream_id)
        target = next(node for node in masters if node is not source)
        slot = key_slot(f"sseserver:{{{stream_id}}}:meta".encode())
        log_key = f"sseserver:{{{stream_id}}}:log".encode()
        before = _stream_length(source, log_key)
        moved = await asyncio.to_thread(own_cluster.move_slot, slot, source, target, 0.25)
        after = _stream_length(target, log_key)  # frames waiting for the slot come later
        moves.append((stream_id, moved, before, after))
        assert _master_of(own_cluster, stream_id) is target
    results = await asyncio.gather(*reads)

    reference = _text(results[-1])
    for i, read in enumerate(results):
        _assert_exact(read, ids[i])
        assert read.last[0] == "done", (ids[i], read.last)
        assert sum(kind == "message" for kind, _, _ in read.events) == TOKENS
        assert _text(read) == reference
    print(f"{MOVED_SLOTS} slots moved mid-stream, keys moved and frames written meanwhile: "
          + ", ".join(f"{moved} keys, {before}->{after}" for _, moved, before, after in moves)
          + f"; {STREAMS} streams exact; reconnects {sum(r.reconnects for r in results)}")
    # Each stream was live when its slot began to move (its end not yet written), so its
    # owner met the slot half moved (ASK, TRYAGAIN) or moved (MOVED), and went on.
    assert all(moved >= 2 and 0 < before < TOKENS + 1 for _, moved, before, _ in moves)


def _stream_length(node: ClusterNode, key: bytes) -> int:
    reply = node.command(b"XLEN", key) or b""
    assert reply.startswith(b":"), reply
    return int(reply[1:])
