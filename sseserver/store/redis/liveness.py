"""Liveness: each process holds a lease in Redis, and whoever finds a lease expired buries
that process: its running streams end as `lost` (their followers are told), its presence
is taken away (their owners are told).

The lease is renewed by a thread of its own, on a connection of its own, not by the event
loop: a loop that falls behind under load still renews it, so a busy process is never
taken for a dead one. Only a process that really stopped (killed, or paused past the lease,
e.g. SIGSTOP) loses it. Such a process learns it when it resumes (`Beat.listed` is false):
its streams were ended by another, and it stops their generations.

A process killed with SIGKILL is noticed within PROCESS_LEASE + HEARTBEAT_INTERVAL.

A beat is several steps, each on one slot (keyspace.py): the process's own keys (BEAT), the
registry of processes, every other process's lease, and, for a dead one, each stream it
generated (BURY_STREAM) or served (DROP_PRESENCE), then its own keys. Every step can be
done twice, so two survivors burying the same process at once, or one that dies halfway,
leave the same result; the last steps record the dead one in `<p>dead` (every beat reads
it, so that quotas.py's scripts, which may touch only their own key, can be told whose
counts to drop) and take it off the registry. On a cluster the
thread's client follows the masters itself (redis-py's RedisCluster): a master that fails
over costs some beats, not the lease, as long as its replica takes over within it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .connection import CONNECT_TIMEOUT
from .keyspace import ProcessKeys, StreamKeys, dead_processes, registry
from .scripts import BEAT, BURY_STREAM, DROP_PRESENCE
from .shards import cluster_seeds, is_cluster

try:
    import redis
    import redis.cluster
    from redis.exceptions import RedisError
except ImportError:  # the optional extra; RedisStore() says what to install
    redis = None  # type: ignore[assignment]
    RedisError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# A process counts as alive this long after its last beat; beats come every
# HEARTBEAT_INTERVAL. A pause shorter than PROCESS_LEASE - HEARTBEAT_INTERVAL is survived.
PROCESS_LEASE: Final = 4.0
HEARTBEAT_INTERVAL: Final = 0.5
# Process bookkeeping sets live this long past the last beat (they outlive the lease so
# that a survivor can still bury a dead process).
REGISTRY_TTL: Final = 3600.0
# A buried process's token stays in `<p>dead` this long: longer than any count it held
# lives (quotas.py's keys), so every process drops that count at its next check.
DEAD_KEPT: Final = 3600.0
# A beat that does not answer within this long counts as Redis unreachable.
BEAT_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class Beat:
    """What one renewal found."""

    reached: bool  # Redis answered
    held: bool = True  # our lease had not lapsed
    listed: bool = True  # we were still registered (not buried, Redis kept its data)
    buried: int = 0  # dead processes this beat buried
    error: str = ""
    dead: tuple[str, ...] = ()  # tokens of processes buried within DEAD_KEPT


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class LeaseThread:
    """Renews this process's lease and buries dead ones, off the event loop."""

    def __init__(self, url: str, token: str, prefix: str, keep_ms: int,
                 on_beat: Callable[[Beat], None]) -> None:
        self._url = url
        self._token = token
        self._prefix = prefix
        self._keep_ms = keep_ms
        self._keys = ProcessKeys(prefix, token)
        self._registry = registry(prefix)
        self._dead = dead_processes(prefix)
        self._publish = "SPUBLISH" if is_cluster(url) else "PUBLISH"
        self._client_name = f"sseserver-{token}-lease"
        self._on_beat = on_beat
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis lease", daemon=True)
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Stop beating (the lease runs out by itself unless retire() gives it up)."""
        self._stop.set()
        await asyncio.to_thread(self._thread.join, BEAT_TIMEOUT + 1)

    async def retire(self) -> None:
        """Leave cleanly, so nobody waits for our lease to run out: what we still own ends
        as lost, our presence goes (telling owners), our lease too. After stop()."""
        await asyncio.to_thread(self._retire)

    def _retire(self) -> None:
        client = self._client or self._connect()
        try:
            self._bury(client, self._token)
        finally:
            client.close()
            self._client = None

    def _connect(self) -> Any:
        assert redis is not None
        options: dict[str, Any] = {"socket_timeout": BEAT_TIMEOUT,
                                   "socket_connect_timeout": CONNECT_TIMEOUT,
                                   "client_name": self._client_name}
        if is_cluster(self._url):
            seeds = cluster_seeds(self._url)
            client: Any = redis.cluster.RedisCluster(
                startup_nodes=[redis.cluster.ClusterNode(s.host, s.port)  # type: ignore[no-untyped-call]
                               for s in seeds],
                username=seeds[0].username, password=seeds[0].password, **options)
        else:
            client = redis.Redis.from_url(self._url, **options)
        self._scripts = {name: client.register_script(source) for name, source in
                         (("beat", BEAT), ("bury", BURY_STREAM), ("drop", DROP_PRESENCE))}
        return client

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if self._client is None:
                        self._client = self._connect()
                    beat = self._beat(self._client)
                except (RedisError, OSError) as exc:
                    beat = Beat(False, error=str(exc) or type(exc).__name__)
                except Exception as exc:  # a cluster client that cannot start yet
                    beat = Beat(False, error=str(exc) or type(exc).__name__)
                try:
                    self._loop.call_soon_threadsafe(self._on_beat, beat)
                except RuntimeError:
                    return  # the loop is closed: the store is gone
                self._stop.wait(HEARTBEAT_INTERVAL)
        finally:
            if self._client is not None and not self._stop.is_set():
                self._client.close()
                self._client = None

    def _beat(self, client: Any) -> Beat:
        keys = self._keys
        held = self._scripts["beat"](keys=[keys.lease, keys.owns, keys.subs],
                                     args=[_ms(PROCESS_LEASE), _ms(REGISTRY_TTL)])
        listed = client.sadd(self._registry, self._token) == 0
        client.pexpire(self._registry, _ms(REGISTRY_TTL))
        others = [t.decode() for t in client.smembers(self._registry)
                  if t.decode() != self._token]
        buried = 0
        if others:
            pipe = client.pipeline(transaction=False)
            for other in others:
                pipe.exists(ProcessKeys(self._prefix, other).lease)
            for other, alive in zip(others, pipe.execute(), strict=True):
                if not alive:
                    buried += self._bury(client, other)
        dead = self._recently_dead(client)
        return Beat(True, bool(held), listed, buried, dead=dead)

    def _recently_dead(self, client: Any) -> tuple[str, ...]:
        pipe = client.pipeline(transaction=False)
        pipe.zremrangebyscore(self._dead, "-inf", _ms(time.time() - DEAD_KEPT))
        pipe.zrange(self._dead, 0, -1)
        return tuple(t.decode() for t in pipe.execute()[1])

    def _bury(self, client: Any, token: str) -> int:
        """End a dead process's running streams as lost and take its presence away; 1 if
        this call took it off the registry."""
        dead = ProcessKeys(self._prefix, token)
        for sid in client.smembers(dead.owns):
            keys = StreamKeys(self._prefix, sid.decode())
            self._scripts["bury"](keys=[keys.log, keys.meta, keys.subs],
                                  args=[token, self._keep_ms, self._publish])
        for sid in client.smembers(dead.subs):
            keys = StreamKeys(self._prefix, sid.decode())
            self._scripts["drop"](keys=[keys.meta, keys.subs],
                                  args=[token, sid, self._prefix + "ctl:"])
        client.delete(dead.lease, dead.owns, dead.subs)
        client.zadd(self._dead, {token: _ms(time.time())})
        client.pexpire(self._dead, _ms(DEAD_KEPT))
        return int(client.srem(self._registry, token))
