"""Where each key lives: one Redis, or the masters of a Redis Cluster (`redis+cluster://`).

    key ─▶ slot (CRC16 of its {hash tag}) ─▶ the master serving it ─▶ that master's pool

On one Redis every key has the one shard, and nothing here retries: a failure is the
caller's StoreUnavailable at once, as it always was. On a cluster the slot map comes from
`CLUSTER SLOTS`; a `MOVED` reply, a lost connection or `CLUSTERDOWN` (a master failing
over) refreshes it, `ASK` or `TRYAGAIN` (a slot migrating) waits briefly, and the command
is tried again until the caller's deadline (connection.unavailable). Every command here
names its key, so it can be routed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast
from urllib.parse import unquote, urlsplit

from .connection import COMMAND_CONNECTIONS, COMMAND_TIMEOUT, CONNECT_TIMEOUT, command_client

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
    from redis.crc import key_slot
    from redis.exceptions import (
        AskError,
        ClusterDownError,
        MasterDownError,
        MovedError,
        ReadOnlyError,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # the optional extra; RedisStore() says what to install
    aioredis = None  # type: ignore[assignment]

log = logging.getLogger("sseserver.redis")

CLUSTER_SCHEME: Final = "redis+cluster://"
SLOTS: Final = 16384
# A slot migrating (ASK, TRYAGAIN): wait this long before trying again.
MIGRATING_PAUSE: Final = 0.02
# A master unreachable or failing over: refresh the map at most this often.
REFRESH_PAUSE: Final = 0.1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to reach one node, and as whom."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def cluster_seeds(url: str) -> list[Endpoint]:
    """`redis+cluster://[user:password@]host:port[,host:port...]` → the nodes to ask first."""
    rest = url[len(CLUSTER_SCHEME):].split("/", 1)[0]
    auth, _, hosts = rest.rpartition("@")
    username = password = None
    if auth:
        user, _, secret = auth.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    seeds = []
    for part in hosts.split(","):
        parsed = urlsplit("//" + part)
        if not parsed.hostname:
            raise ValueError(f"no host in {part!r}")
        seeds.append(Endpoint(parsed.hostname, parsed.port or 6379, username, password))
    if not seeds:
        raise ValueError("no node named")
    return seeds


class Shards:
    """The command clients, one per master, and the slot map that picks one for a key."""

    def __init__(self, url: str, token: str) -> None:
        self.cluster = is_cluster(url)
        self._token = token
        self._clients: dict[str, Any] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._slots: list[str] = []
        self._replicas: list[Endpoint] = []
        self._refreshing: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._on_change: list[Callable[[set[str]], None]] = []
        if self.cluster:
            self._seeds = cluster_seeds(url)
            self.single: Any = None
        else:
            self._seeds = []
            self.single = command_client(url, token)
            self._clients[""] = self.single

    # -- the map --------------------------------------------------------------------

    def on_change(self, callback: Callable[[set[str]], None]) -> None:
        """`callback(gone)` after a refresh, with the addresses that are masters no more."""
        self._on_change.append(callback)

    def address_of(self, key: str | bytes) -> str:
        """The address of the master serving `key` ("" on one Redis, or while unknown)."""
        if not self.cluster:
            return ""
        if not self._slots:
            return ""
        return self._slots[key_slot(key.encode() if isinstance(key, str) else key)]

    def client(self, address: str) -> Any:
        """The command client of one master (created on first use)."""
        client = self._clients.get(address)
        if client is None:
            endpoint = self._endpoints.get(address)
            if endpoint is None:
                raise RedisConnectionError(f"no master known for {address or 'this slot'}")
            client = self._clients[address] = _node_client(endpoint, self._token,
                                                           self.per_master())
        return client

    def endpoint(self, address: str) -> Endpoint | None:
        return self._endpoints.get(address)

    def masters(self) -> list[str]:
        return sorted(set(self._slots)) if self.cluster else [""]

    def per_master(self) -> int:
        """Each master's pool: the process's command connections shared among them."""
        return max(2, COMMAND_CONNECTIONS // max(1, len(set(self._slots))))

    async def refresh(self) -> None:
        """Read the slot map again (once, however many callers ask at the same time)."""
        if not self.cluster:
            return
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.ensure_future(self._refresh())
        await asyncio.shield(task)

    async def _refresh(self) -> None:
        known = [self._endpoints[a] for a in self.masters() if a in self._endpoints]
        last: Exception | None = None
        for endpoint in dict.fromkeys([*known, *self._seeds, *self._replicas]):
            try:
                reply = await _ask_slots(endpoint, self._token)
            except (OSError, RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
                last = exc
                continue
            except Exception as exc:  # a node that is not (yet) in a cluster, or down
                last = exc
                continue
            if self._apply(reply, endpoint):
                return
        raise RedisConnectionError(f"no cluster node answered: {last}")

    def _apply(self, reply: Any, asked: Endpoint) -> bool:
        slots = [""] * SLOTS
        endpoints: dict[str, Endpoint] = {}
        replicas: list[Endpoint] = []
        for entry in reply:
            start, end, master, *others = entry
            endpoint = _endpoint_of(master, asked)
            endpoints[endpoint.address] = endpoint
            for slot in range(int(start), int(end) + 1):
                slots[slot] = endpoint.address
            replicas += [_endpoint_of(other, asked) for other in others]
        if not endpoints:
            return False
        gone = set(self._endpoints) - set(endpoints)
        self._slots, self._replicas = slots, replicas
        self._endpoints = endpoints
        for address in gone:
            client = self._clients.pop(address, None)
            if client is not None:
                task = asyncio.ensure_future(_close_quietly(client))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        if gone:
            log.warning("redis cluster: %s no longer master(s)", ", ".join(sorted(gone)))
        for callback in self._on_change:
            callback(gone)
        return True

    # -- commands -------------------------------------------------------------------

    async def run(self, key: str | bytes, call: Callable[[Any], Awaitable[T]]) -> T:
        """`call(client)` on the master serving `key`; on a cluster, again after each
        redirection or failover until it answers (the caller bounds the time)."""
        if not self.cluster:
            return await call(self.single)
        if not self._slots:
            await self.refresh()
        while True:
            try:
                return await call(self.client(self.address_of(key)))
            except MovedError:
                await self.refresh()
            except (AskError, TryAgainError):
                await asyncio.sleep(MIGRATING_PAUSE)
            except (ClusterDownError, MasterDownError, ReadOnlyError, RedisConnectionError,
                    RedisTimeoutError, OSError):
                await asyncio.sleep(REFRESH_PAUSE)
                with contextlib.suppress(Exception):
                    await self.refresh()

    async def script(self, lua: Any, keys: list[str], args: Sequence[Any]) -> Any:
        """Run a script (from `script()`) on the master serving its keys (one slot)."""
        return await self.run(keys[0], lambda client: lua(keys=keys, args=args, client=client))

    async def pipeline(self, calls: Sequence[tuple[str | bytes, Callable[[Any], Any]]]
                       ) -> list[Any]:
        """Each `(key, add)` adds one command for `key` to a pipeline; every master's
        commands go in one round trip, all masters at once; the answers in order."""
        if not self.cluster:
            pipe = self.single.pipeline(transaction=False)
            for _, add in calls:
                add(pipe)
            return list(await pipe.execute())
        if not self._slots:
            await self.refresh()
        groups: dict[str, list[int]] = {}
        for number, (key, _) in enumerate(calls):
            groups.setdefault(self.address_of(key), []).append(number)
        results: list[Any] = [None] * len(calls)

        async def one_master(address: str, numbers: list[int]) -> None:
            try:
                pipe = self.client(address).pipeline(transaction=False)
                for number in numbers:
                    calls[number][1](pipe)
                answers = await pipe.execute(raise_on_error=False)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                answers = [exc] * len(numbers)
            for number, answer in zip(numbers, answers, strict=True):
                if isinstance(answer, Exception):
                    answer = await self.run(calls[number][0], _alone(calls[number][1]))
                results[number] = answer

        await asyncio.gather(*(one_master(a, n) for a, n in groups.items()))
        return results

    async def ping(self) -> None:
        """Every master answers."""
        if not self.cluster:
            await self.single.ping()
            return
        if not self._slots:
            await self.refresh()
        await asyncio.gather(*(self.client(a).ping() for a in self.masters()))

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await _close_quietly(client)


def script(source: str) -> Any:
    """A Lua script, run on whichever master's client each call names (Shards.script)."""
    return AsyncScript(cast(Any, None), source.encode())


def _alone(add: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    async def call(client: Any) -> Any:
        pipe = client.pipeline(transaction=False)
        add(pipe)
        (answer,) = await pipe.execute()
        return answer
    return call


def _endpoint_of(node: Sequence[Any], asked: Endpoint) -> Endpoint:
    host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
    return Endpoint(host or asked.host, int(node[1]), asked.username, asked.password)


def _node_client(endpoint: Endpoint, token: str, connections: int) -> Any:
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool(
        host=endpoint.host, port=endpoint.port, username=endpoint.username,
        password=endpoint.password, max_connections=connections, timeout=COMMAND_TIMEOUT,
        socket_timeout=None, socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 1), client_name=f"sseserver-{token}",
    ))


async def _ask_slots(endpoint: Endpoint, token: str) -> Any:
    client = aioredis.Redis(host=endpoint.host, port=endpoint.port, username=endpoint.username,
                            password=endpoint.password, socket_connect_timeout=CONNECT_TIMEOUT,
                            client_name=f"sseserver-{token}-map")
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            return await client.execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER SLOTS", **{"NEVER_DECODE": True})
    finally:
        await _close_quietly(client)


async def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()
