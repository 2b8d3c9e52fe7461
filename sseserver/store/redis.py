"""Redis stream store: every process on every host sees every stream.

One generation's keys (they share a `{hash tag}`, so they sit in one slot):

    <p>{id}:log   a Redis Stream: frame i is entry `0-(i+1)` (field `f`); the end is one
                  more entry (field `e` = done | lost), so a blocking XREAD wakes for it
    <p>{id}:meta  hash: owner (the generating process's token), ended, cancel
    <p>{id}:subs  set: tokens of the processes that have subscribers attached

One process's keys (its token is random per store):

    <p>proc:<token>         its lease: PX PROCESS_LEASE, renewed every HEARTBEAT_INTERVAL
    <p>proc:<token>:owns    streams it generates      <p>proc:<token>:subs  streams it serves
    <p>procs                every token, so that a live process can find the dead ones
    <p>ctl:<token>          pub/sub channel to the owner: `C<id>` cancel, `B<id>` a first
                            subscriber came, `I<id>` the last one left

Explicit entry ids make a read by frame index exact (`XRANGE 0-(start+1) +`, or
`XREAD BLOCK … 0-start` from a subscriber's position), and make the end written by a
reaper collide with the next frame of an owner that was taken for dead, so that owner
stops (`StreamLost`) instead of writing past the end.

Presence is a set of process tokens, not a counter: a process counts its own subscribers
and joins the set on 0 → 1 and leaves on 1 → 0. Each heartbeat also looks for processes
whose lease has expired and buries them (one script): their streams get a `lost` end, and
their presence is removed, which tells the owners `I` when nobody is left. So a process
killed with SIGKILL is noticed within PROCESS_LEASE + HEARTBEAT_INTERVAL (4 s).

A running stream's keys expire RUNNING_TTL after the owner last refreshed them (every
REFRESH_EVERY); a finished one's after `keep_for` (the resume window), so nothing stays
behind a dead cluster. Redis Cluster is not supported: the scripts touch process keys and
stream keys together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import StoreUnavailable, StreamLost
from .base import Batch, Cancel, Signal, StreamListener

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError, ResponseError
except ImportError:  # the optional extra is not installed; RedisStore() says so
    aioredis = None  # type: ignore[assignment]
    RedisError = ResponseError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# A process counts as alive this long after its last heartbeat; heartbeats come every
# HEARTBEAT_INTERVAL. The sum bounds how long the subscribers of a killed process's
# generations wait for their `error` event.
PROCESS_LEASE: Final = 3.0
HEARTBEAT_INTERVAL: Final = 1.0
# A running stream's keys live this long unless its owner refreshes them (every
# REFRESH_EVERY), so a stream whose every process died is freed anyway.
RUNNING_TTL: Final = 60.0
REFRESH_EVERY: Final = 15.0
# Process bookkeeping sets live this long past the last heartbeat (they outlive the lease
# so that a survivor can still bury a dead process).
REGISTRY_TTL: Final = 3600.0
# A finished stream stays at least this long, however short the resume window: a key
# deleted in the script that ends it would leave blocked readers waiting for an end that
# they never see.
MIN_KEEP: Final = 0.25
# Frames per read; a longer backlog takes several reads.
READ_COUNT: Final = 1024
# Every command must answer within COMMAND_TIMEOUT (a blocking read: its block time more).
# These are our own asyncio timeouts, not redis-py's socket_timeout: with that set, redis-py
# sends through asyncio.wait_for, which on Python 3.11 loses a cancellation that lands as
# the send completes, so a cancelled generation would go on generating (and billing).
COMMAND_TIMEOUT: Final = 5.0
# Connections for commands (shared), and at most this many subscribers of one process
# waiting in a blocking read at once (each holds a connection while it waits; Redis's
# own default limit is 10000 clients).
COMMAND_CONNECTIONS: Final = 64
MAX_WAITING_READERS: Final = 10000
BLOCK_SLICE: Final = 2.0
CONNECT_TIMEOUT: Final = 1.0
HEALTH_TIMEOUT: Final = 1.0
RECONNECT_DELAY: Final = 0.5
# open() waits this long for the control channel before starting degraded.
OPEN_TIMEOUT: Final = 2.0

_COLLISION: Final = "equal or smaller"  # XADD's refusal of an id at or below the top

_READ: Final = """
-- KEYS: log meta; ARGV: id sequence of the first frame wanted, count
local state = redis.call('HMGET', KEYS[2], 'owner', 'ended')
if not state[1] then return false end
-- event ids given out: every entry but a `done` end (a `lost` end is reported as an event)
local held = redis.call('XLEN', KEYS[1])
if state[2] == 'done' then held = held - 1 end
return {state[2] or '', redis.call('XRANGE', KEYS[1], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2]),
        held}
"""

_FINISH: Final = """
-- KEYS: log meta subs owns; ARGV: end id sequence, reason, keep ms, stream id, token
redis.call('SREM', KEYS[4], ARGV[4])
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[5]
   or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return 0
end
redis.call('XADD', KEYS[1], '0-' .. ARGV[1], 'e', ARGV[2])
redis.call('HSET', KEYS[2], 'ended', ARGV[2])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""

_JOIN: Final = """
-- KEYS: meta subs, this process's subs; ARGV: token, stream id, key prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  if redis.call('SCARD', KEYS[2]) == 1 and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. 'ctl:' .. owner, 'B' .. ARGV[2])
  end
end
return 1
"""

_LEAVE: Final = """
-- KEYS: meta subs, this process's subs; ARGV: token, stream id, key prefix
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. 'ctl:' .. owner, 'I' .. ARGV[2])
  end
end
return 1
"""

_CANCEL: Final = """
-- KEYS: meta; ARGV: stream id, key prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 2 end
redis.call('HSET', KEYS[1], 'cancel', '1')
redis.call('PUBLISH', ARGV[2] .. 'ctl:' .. owner, 'C' .. ARGV[1])
return 1
"""

# Ends a dead (or retiring) process's streams with `lost` and takes its presence away.
_BURY_FUNCTION: Final = """
local prefix = ARGV[2]
local function stream_keys(sid)
  local base = prefix .. '{' .. sid .. '}:'
  return base .. 'log', base .. 'meta', base .. 'subs'
end
local function bury(token, keep_ms)
  local base = prefix .. 'proc:' .. token
  for _, sid in ipairs(redis.call('SMEMBERS', base .. ':owns')) do
    local log, meta, subs = stream_keys(sid)
    if redis.call('HGET', meta, 'owner') == token
       and redis.call('HEXISTS', meta, 'ended') == 0 then
      redis.call('XADD', log, '0-' .. (redis.call('XLEN', log) + 1), 'e', 'lost')
      redis.call('HSET', meta, 'ended', 'lost')
      for _, key in ipairs({log, meta, subs}) do redis.call('PEXPIRE', key, keep_ms) end
    end
  end
  for _, sid in ipairs(redis.call('SMEMBERS', base .. ':subs')) do
    local _, meta, subs = stream_keys(sid)
    if redis.call('SREM', subs, token) == 1 and redis.call('SCARD', subs) == 0 then
      local owner = redis.call('HGET', meta, 'owner')
      if owner and redis.call('HEXISTS', meta, 'ended') == 0 then
        redis.call('PUBLISH', prefix .. 'ctl:' .. owner, 'I' .. sid)
      end
    end
  end
  redis.call('DEL', base, base .. ':owns', base .. ':subs')
  redis.call('SREM', prefix .. 'procs', token)
end
"""

_HEARTBEAT: Final = _BURY_FUNCTION + """
-- ARGV: token, key prefix, lease ms, keep ms, registry ms
local me = ARGV[1]
local base = prefix .. 'proc:' .. me
local before = redis.call('SET', base, '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', prefix .. 'procs', me)
for _, key in ipairs({prefix .. 'procs', base .. ':owns', base .. ':subs'}) do
  redis.call('PEXPIRE', key, ARGV[5])
end
local buried = 0
for _, other in ipairs(redis.call('SMEMBERS', prefix .. 'procs')) do
  if other ~= me and redis.call('EXISTS', prefix .. 'proc:' .. other) == 0 then
    bury(other, ARGV[4])
    buried = buried + 1
  end
end
return {before and 1 or 0, buried}
"""

_RETIRE: Final = _BURY_FUNCTION + """
-- ARGV: token, key prefix, keep ms
bury(ARGV[1], ARGV[3])
return 1
"""


class _Owned:
    """What the owner of a running generation keeps about it."""

    __slots__ = ("broken", "busy", "cancelled", "next_index", "on_signal", "pending")

    def __init__(self) -> None:
        self.next_index = 0
        self.on_signal: Callable[[Signal], None] | None = None  # the owner's, from watch()
        self.busy = False  # what the owner was last told
        self.cancelled = False
        self.broken = False  # an append failed: the stream cannot end as "done"
        self.pending: bytes | None = None  # a frame whose XADD has not answered yet

    def apply(self, kind: bytes) -> None:
        if kind == b"C" and not self.cancelled:
            self.cancelled = True
            self._signal(Signal.CANCEL)
        elif kind == b"B" and not self.busy:
            self.busy = True
            self._signal(Signal.BUSY)
        elif kind == b"I" and self.busy:
            self.busy = False
            self._signal(Signal.IDLE)

    def _signal(self, signal: Signal) -> None:
        if self.on_signal is not None:
            self.on_signal(signal)


class _Presence:
    """This process's subscribers of one stream, and whether Redis lists us for it."""

    __slots__ = ("count", "lock", "present", "users")

    def __init__(self) -> None:
        self.count = 0
        self.present = False
        self.lock = asyncio.Lock()
        self.users = 0


@contextlib.asynccontextmanager
async def _unavailable(timeout: float = COMMAND_TIMEOUT) -> AsyncIterator[None]:
    """Bound the commands inside by `timeout`, and make any failure StoreUnavailable."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise StoreUnavailable(f"redis: no answer within {timeout:.0f}s") from exc
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc


def redacted_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class RedisStore:
    backend = "redis"

    def __init__(self, url: str, *, resume_window: float, prefix: str = "sseserver:") -> None:
        if aioredis is None:
            raise RuntimeError(
                "--redis-url needs the redis client: pip install 'sseserver[redis]'"
            )
        self._token = secrets.token_hex(8)
        self._prefix = prefix
        self._keep_ms = _keep_ms(resume_window)  # for the streams of dead processes
        options: dict[str, Any] = {
            "socket_timeout": None,  # see COMMAND_TIMEOUT
            "socket_connect_timeout": CONNECT_TIMEOUT,
            # One immediate retry, for a pooled connection that went stale while Redis
            # restarted; then fail fast (no reconnection loop), and /healthz says degraded.
            "retry": Retry(NoBackoff(), 1),
            "client_name": f"sseserver-{self._token}",
        }
        # Commands share a few connections (waiting for a free one); blocking reads each
        # hold one while they wait, so they have a pool of their own, as large as the
        # number of subscribers that may wait at once.
        # from_pool: the client owns its pool, and aclose() closes it.
        self._redis = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            url, max_connections=COMMAND_CONNECTIONS, timeout=COMMAND_TIMEOUT, **options,
        ))
        self._blocking = aioredis.Redis.from_pool(aioredis.ConnectionPool.from_url(
            url, max_connections=MAX_WAITING_READERS, **options,
        ))
        self._url = redacted_url(url)
        self._read_script = self._redis.register_script(_READ)
        self._finish_script = self._redis.register_script(_FINISH)
        self._join_script = self._redis.register_script(_JOIN)
        self._leave_script = self._redis.register_script(_LEAVE)
        self._cancel_script = self._redis.register_script(_CANCEL)
        self._heartbeat_script = self._redis.register_script(_HEARTBEAT)
        self._retire_script = self._redis.register_script(_RETIRE)
        self._proc_key = f"{prefix}proc:{self._token}"
        self._owned: dict[str, _Owned] = {}
        self._presence: dict[str, _Presence] = {}
        self._dirty: set[str] = set()  # presence Redis may not know yet
        self._unfinished: dict[str, tuple[int, str, int]] = {}  # finish() to retry
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[None]] = set()  # shielded leaves
        self._listening = asyncio.Event()
        self._tried = asyncio.Event()  # the control channel was tried once, for open()
        self._degraded = False

    # -- lifetime -----------------------------------------------------------------

    async def open(self) -> None:
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="redis heartbeat"),
            asyncio.create_task(self._control(), name="redis control channel"),
        ]
        # Signals published before we listen are caught up by _reconcile() anyway;
        # waiting here only makes a fresh store's first signals prompt.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPEN_TIMEOUT):
                await self._tried.wait()
        if not self._listening.is_set():
            log.error("redis at %s is unreachable; starting degraded", self._url)
        log.info("stream store: redis at %s (process token %s)", self._url, self._token)

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self._redis.ping()
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                # Leave cleanly, so nobody waits for our lease to run out: what we still
                # own ends as lost, our presence goes (telling owners), our lease too.
                await self._retire_script(args=[self._token, self._prefix, self._keep_ms])
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("redis: could not retire process %s: %s", self._token, exc)
        self._owned.clear()
        self._presence.clear()
        await self._redis.aclose()
        await self._blocking.aclose()

    # -- the owner's side ---------------------------------------------------------

    async def create(self, stream_id: str) -> None:
        meta = self._keys(stream_id)[1]
        async with _unavailable(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(meta, "owner", self._token)
            pipe.pexpire(meta, _ms(RUNNING_TTL))
            pipe.sadd(self._proc_key + ":owns", stream_id)
            await pipe.execute()
        self._owned[stream_id] = _Owned()

    async def append(self, stream_id: str, frame: bytes) -> None:
        owned = self._owned[stream_id]
        if owned.pending is not None:
            # The last append was cancelled mid-way, and its frame may or may not be in
            # Redis; its index was given out all the same (the frame carries its id), so
            # it goes in first: adding it again is harmless (see _add).
            await self._add(stream_id, owned, owned.pending)
        await self._add(stream_id, owned, frame)

    async def _add(self, stream_id: str, owned: _Owned, frame: bytes) -> None:
        """XADD `frame` as entry next_index + 1; one round trip."""
        log_key = self._keys(stream_id)[0]
        entry_id = f"0-{owned.next_index + 1}"
        owned.pending = frame
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                if owned.next_index == 0:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.xadd(log_key, {"f": frame}, id=entry_id)
                        pipe.pexpire(log_key, _ms(RUNNING_TTL))
                        added = (await pipe.execute())[0]
                else:
                    # NOMKSTREAM: a stream that vanished (Redis lost its data) stays gone.
                    added = await self._redis.xadd(
                        log_key, {"f": frame}, id=entry_id, nomkstream=True
                    )
        except ResponseError as exc:
            if _COLLISION not in str(exc):
                owned.broken = True
                raise StoreUnavailable(f"redis: {exc}") from exc
            if not await self._is_there(log_key, entry_id, frame):
                raise StreamLost(f"{stream_id} was ended by another process") from exc
            added = entry_id  # added before, by a try whose answer was lost
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            owned.broken = True
            raise StoreUnavailable(f"redis: {exc or 'no answer'}") from exc
        if added is None:
            raise StreamLost(f"{stream_id} is no longer in redis")
        owned.pending = None
        owned.next_index += 1

    async def _is_there(self, log_key: str, entry_id: str, frame: bytes) -> bool:
        async with _unavailable():
            entries: Any = await self._redis.xrange(log_key, entry_id, entry_id)
        return bool(entries) and _fields(entries[0][1]).get(b"f") == frame

    async def finish(self, stream_id: str, keep_for: float) -> None:
        owned = self._owned[stream_id]
        try:
            if owned.pending is not None and not owned.broken:
                await self._add(stream_id, owned, owned.pending)
        except StreamLost:
            del self._owned[stream_id]
            return
        except StoreUnavailable:
            pass  # owned.broken is set: the stream ends as lost
        del self._owned[stream_id]
        end = (owned.next_index + 1, "lost" if owned.broken else "done", _keep_ms(keep_for))
        try:
            await self._finish(stream_id, *end)
        except StoreUnavailable:
            self._unfinished[stream_id] = end  # the heartbeat ends it once Redis is back
            raise

    async def _finish(self, stream_id: str, sequence: int, reason: str, keep_ms: int) -> None:
        async with _unavailable():
            await self._finish_script(
                keys=[*self._keys(stream_id), self._proc_key + ":owns"],
                args=[sequence, reason, keep_ms, stream_id, self._token],
            )

    def watch(self, stream_id: str, on_signal: Callable[[Signal], None]) -> None:
        self._owned[stream_id].on_signal = on_signal

    # -- everyone's side ----------------------------------------------------------

    async def read(self, stream_id: str, start: int, wait: float) -> Batch | None:
        log_key, meta, _ = self._keys(stream_id)
        async with _unavailable():
            reply = await self._read_script(keys=[log_key, meta], args=[start + 1, READ_COUNT])
        if reply is None:
            return None
        ended, entries, held = reply
        batch = _batch(entries, ended_before=bool(ended), held=int(held))
        if batch.frames or batch.ended or wait <= 0:
            return batch
        held = batch.held
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (remaining := deadline - loop.time()) > 0:
            block_ms = max(1, _ms(min(remaining, BLOCK_SLICE)))
            async with _unavailable(block_ms / 1000 + COMMAND_TIMEOUT):
                found = await self._blocking.xread(
                    {log_key: f"0-{start}"}, count=READ_COUNT, block=block_ms
                )
            if found:
                batch = _batch(_entries_of(found), ended_before=False, start=start)
                if batch.frames or batch.ended:
                    return batch
        return Batch([], False, held=held)

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        """No in-process push: frames may be appended by another process, so every
        subscriber reads them with a blocking XREAD."""
        return False

    def unlisten(self, stream_id: str) -> None:
        return None

    async def join(self, stream_id: str) -> None:
        presence = self._presence.setdefault(stream_id, _Presence())
        presence.count += 1
        await self._sync_presence(stream_id, presence)

    async def leave(self, stream_id: str) -> None:
        presence = self._presence.get(stream_id)
        if presence is None or presence.count == 0:
            return
        presence.count -= 1
        # Shielded: leave() runs in the `finally` of a handler that the client's
        # disconnect cancelled, and a second cancel must not cut the script off halfway
        # (Redis would list us as present with nobody here, and the owner never hears IDLE).
        sync = asyncio.ensure_future(self._leave_now(stream_id, presence))
        self._background.add(sync)
        sync.add_done_callback(self._background.discard)
        await asyncio.shield(sync)

    async def _leave_now(self, stream_id: str, presence: _Presence) -> None:
        try:
            await self._sync_presence(stream_id, presence)
        except StoreUnavailable as exc:
            log.info("redis: leave of %s deferred: %s", stream_id, exc)
            self._dirty.add(stream_id)

    async def request_cancel(self, stream_id: str) -> Cancel:
        async with _unavailable():
            found = await self._cancel_script(
                keys=[self._keys(stream_id)[1]], args=[stream_id, self._prefix]
            )
        return {0: Cancel.UNKNOWN, 1: Cancel.CANCELLED}.get(int(found), Cancel.ENDED)

    # -- presence -----------------------------------------------------------------

    async def _sync_presence(self, stream_id: str, presence: _Presence) -> None:
        """Make Redis list this process for the stream iff it has subscribers here.
        Serialised per stream, so a quick join and leave cannot reach Redis swapped."""
        presence.users += 1
        try:
            async with presence.lock:
                wanted = presence.count > 0
                if wanted == presence.present:
                    return
                script = self._join_script if wanted else self._leave_script
                _, meta, subs = self._keys(stream_id)
                try:
                    async with _unavailable():
                        held = await script(
                            keys=[meta, subs, self._proc_key + ":subs"],
                            args=[self._token, stream_id, self._prefix],
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
            if idle and self._presence.get(stream_id) is presence:
                del self._presence[stream_id]

    # -- background ---------------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Renew our lease, bury dead processes, and catch up on what failed before."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        first = True
        while True:
            try:
                async with _unavailable():
                    listed, buried = await self._heartbeat_script(args=[
                        self._token, self._prefix, _ms(PROCESS_LEASE), self._keep_ms,
                        _ms(REGISTRY_TTL),
                    ])
                if buried:
                    log.warning("redis: %d dead sseserver process(es) buried", buried)
                if not listed and not first:
                    # Our lease ran out (a long pause, or Redis lost its data): we may
                    # have been buried, so tell Redis again about our subscribers.
                    log.warning("redis: lease of process %s had expired", self._token)
                    for stream_id, presence in self._presence.items():
                        presence.present = False
                        self._dirty.add(stream_id)
                first = False
                await self._catch_up()
                if loop.time() - refreshed >= REFRESH_EVERY:
                    await self._refresh_running()
                    refreshed = loop.time()
                if self._degraded:
                    log.warning("redis at %s is reachable again", self._url)
                    self._degraded = False
            except StoreUnavailable as exc:
                if not self._degraded:
                    log.error("redis at %s is unreachable: %s", self._url, exc)
                    self._degraded = True
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _catch_up(self) -> None:
        for stream_id in list(self._dirty):
            presence = self._presence.get(stream_id)
            if presence is not None:
                await self._sync_presence(stream_id, presence)
            self._dirty.discard(stream_id)
        for stream_id, end in list(self._unfinished.items()):
            await self._finish(stream_id, *end)
            del self._unfinished[stream_id]

    async def _refresh_running(self) -> None:
        if not self._owned:
            return
        async with _unavailable(), self._redis.pipeline(transaction=False) as pipe:
            for stream_id in self._owned:
                for key in self._keys(stream_id):
                    pipe.pexpire(key, _ms(RUNNING_TTL))
            await pipe.execute()

    async def _control(self) -> None:
        """Listen on our control channel; after each (re)subscription, reconcile what
        was published while we were not listening."""
        channel = f"{self._prefix}ctl:{self._token}"
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    await pubsub.subscribe(channel)
                    await self._reconcile()
                self._listening.set()
                self._tried.set()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._on_control(message["data"])
            except (RedisError, OSError) as exc:  # TimeoutError too
                log.debug("redis control channel: %s", exc)
            finally:
                self._listening.clear()
                self._tried.set()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RECONNECT_DELAY)

    def _on_control(self, data: bytes) -> None:
        owned = self._owned.get(data[1:].decode())
        if owned is not None:
            owned.apply(data[:1])

    async def _reconcile(self) -> None:
        owned = list(self._owned.items())
        if not owned:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id, _ in owned:
                _, meta, subs = self._keys(stream_id)
                pipe.hget(meta, "cancel")
                pipe.scard(subs)
            states = await pipe.execute()
        for (_, stream), cancel, subscribers in zip(
            owned, states[::2], states[1::2], strict=True
        ):
            if cancel:
                stream.apply(b"C")
            stream.apply(b"B" if subscribers else b"I")

    def _keys(self, stream_id: str) -> tuple[str, str, str]:
        base = f"{self._prefix}{{{stream_id}}}:"
        return base + "log", base + "meta", base + "subs"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _keep_ms(keep_for: float) -> int:
    return _ms(max(keep_for, MIN_KEEP))


def _entries_of(xread_reply: Any) -> list[Any]:
    """The entries of our one stream in an XREAD reply (a list or, in RESP3, a dict)."""
    if isinstance(xread_reply, dict):
        return list(next(iter(xread_reply.values()))[0])
    return list(xread_reply[0][1])


def _fields(raw: Any) -> dict[bytes, bytes]:
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _batch(
    entries: Sequence[Any], *, ended_before: bool, held: int | None = None, start: int = 0
) -> Batch:
    """Entries (frames, then maybe the end) as a Batch. `ended_before`: the stream has
    ended and nothing was read, so the position is at or past its end. `held`: Batch.held
    as the read script counted it; None after a blocking read from `start`, which counts
    what it found (the stream holds at least that)."""
    frames: list[bytes] = []
    ended, lost = ended_before, False
    for _, raw in entries:
        fields = _fields(raw)
        frame = fields.get(b"f")
        if frame is None:
            ended, lost = True, fields.get(b"e") == b"lost"
            break
        frames.append(frame)
    else:
        ended = ended_before and not frames
    if held is None:
        held = start + len(frames) + lost
    return Batch(frames, ended, lost=lost, held=held)
