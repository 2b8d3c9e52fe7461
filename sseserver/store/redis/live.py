"""A reader: one pub/sub connection to a master (readers.py keeps one per master; one on
a single Redis) that brings this process the new frames of every stream another process
generates and this one follows; one of them (the home reader) also takes the control
messages for the streams it owns.

    owner's writer ── (S)PUBLISH f<i>:<frame> ──▶ the master of the stream's slot ──▶ its
                                                   reader here ──▶ the stream's listener
A stream is subscribed while this process has a follower of it (or a reader waiting), and
each frame arrives once, however many followers it has here. On a cluster a stream's
channel is a sharded one (`SSUBSCRIBE`), on the master serving its slot; control messages
use plain `SUBSCRIBE` on the home reader. The log stays the truth: after the subscription
is confirmed, the reader reads the log from the follower's position (what was published
before it), then takes messages by index, skipping any it has and reading the log again on
a gap, or when told the log is ahead (`h<n>`: the owner has just begun publishing). A lost
connection, a slot that moved (the master unsubscribes its channels) or a master failing
over lets every follower on it go: they read the log, which says whether the stream went
on, ended, or cannot be reached, and follow again on whichever master serves it then.

The connection is a plain asyncio protocol over hiredis's parser: a message costs one C
parse and one dispatch, with no task switch or per-message coroutine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from ...errors import StoreUnavailable
from ..base import Batch, StreamListener
from .keyspace import StreamKeys
from .resp import command
from .shards import Endpoint

try:
    import hiredis
    from redis.connection import parse_url
except ImportError:  # the optional extra; RedisStore() says what to install
    hiredis = None  # type: ignore[assignment]
    parse_url = None  # type: ignore[assignment]

log = logging.getLogger("sseserver.redis")

CONNECT_TIMEOUT: Final = 1.0
RECONNECT_DELAY: Final = 0.5
# Messages kept for a stream while its log is being read; past it they are dropped and the
# log is read again (it holds them all).
HELD_MAX: Final = 1024

ReadRange = Callable[[str, int], Awaitable[Batch | None]]


class _Remote:
    """A stream another process generates, followed or awaited here."""

    __slots__ = ("catching_up", "channel", "held", "listener", "next_index", "stream_id",
                 "subscribed", "waiters")

    def __init__(self, stream_id: str, channel: bytes) -> None:
        self.stream_id = stream_id
        self.channel = channel
        self.listener: StreamListener | None = None
        self.next_index = 0  # the listener's position
        self.subscribed = False
        self.catching_up = False
        # Messages during catch-up: (index, frame or None for the end, ended normally).
        self.held: list[tuple[int, bytes | None, bool]] | None = None
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _Protocol(asyncio.Protocol):
    def __init__(self, reader: LiveReader) -> None:
        self._owner = reader
        self._parser = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        parser.feed(data)
        on_reply = self._owner.on_reply
        while (reply := parser.gets()) is not False:
            on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class LiveReader:
    """One pub/sub connection to one master, reconnected while it is needed."""

    def __init__(
        self,
        target: str | Endpoint,
        client_name: str,
        prefix: str,
        control_channel: str | None,
        on_control: Callable[[bytes], None],
        on_listening: Callable[[], Awaitable[None]],
        read_range: ReadRange,
        *,
        sharded: bool = False,
        on_moved: Callable[[], None] = lambda: None,
    ) -> None:
        self._target = target
        self._client_name = client_name
        self._prefix = prefix
        self._control = control_channel.encode() if control_channel else None
        self._on_control = on_control
        self._on_listening = on_listening
        self._read_range = read_range
        self._on_moved = on_moved
        if sharded:
            self._subscribe, self._unsubscribe = "SSUBSCRIBE", "SUNSUBSCRIBE"
            self._message_kind, self._confirm_kind = b"smessage", b"ssubscribe"
        else:
            self._subscribe, self._unsubscribe = "SUBSCRIBE", "UNSUBSCRIBE"
            self._message_kind, self._confirm_kind = b"message", b"subscribe"
        self._dropping: collections.Counter[bytes] = collections.Counter()
        self._remote: dict[bytes, _Remote] = {}  # by channel
        self._protocol: _Protocol | None = None
        self._pending: list[asyncio.Future[Any]] = []  # replies to non-pub/sub commands
        self._tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._control_ready = asyncio.Event()  # SUBSCRIBE to the control channel confirmed
        self.connected = asyncio.Event()
        self.tried = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis reader")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await asyncio.gather(
            *(t for t in (self._task, *self._tasks) if t is not None), return_exceptions=True
        )
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.abort()
        self._release_all()

    # -- following ----------------------------------------------------------------

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        if not self.connected.is_set():
            return False  # the subscriber reads (and learns whether Redis answers)
        remote = self._remote_of(stream_id)
        if remote.listener is not None:
            return False
        remote.listener = listener
        remote.next_index = start
        if remote.subscribed and not remote.catching_up:
            self._catch_up(remote)  # the log may be past `start` already
        return True

    def unlisten(self, stream_id: str) -> None:
        remote = self._remote.get(StreamKeys(self._prefix, stream_id).channel.encode())
        if remote is not None:
            remote.listener = None
            self._drop_if_idle(remote)

    async def wait(self, stream_id: str, timeout: float) -> None:
        """Until a message about the stream arrives, or `timeout` seconds."""
        if not self.connected.is_set():
            await asyncio.sleep(min(timeout, RECONNECT_DELAY))
            return
        remote = self._remote_of(stream_id)
        waiter = asyncio.get_running_loop().create_future()
        remote.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            if waiter in remote.waiters:
                remote.waiters.remove(waiter)
            self._drop_if_idle(remote)

    def _remote_of(self, stream_id: str) -> _Remote:
        channel = StreamKeys(self._prefix, stream_id).channel.encode()
        remote = self._remote.get(channel)
        if remote is None:
            remote = self._remote[channel] = _Remote(stream_id, channel)
            self._send(command(self._subscribe, channel))
        return remote

    def _drop_if_idle(self, remote: _Remote) -> None:
        idle = remote.listener is None and not remote.waiters and not remote.catching_up
        if idle and self._remote.get(remote.channel) is remote:
            del self._remote[remote.channel]
            if remote.subscribed or self.connected.is_set():
                self._dropping[remote.channel] += 1
                self._send(command(self._unsubscribe, remote.channel))

    def _end(self, remote: _Remote, *, final: bool = False) -> None:
        """No more pushes for this stream; unless it ended normally (`final`), its follower
        reads the log from here."""
        listener, remote.listener = remote.listener, None
        remote.wake()
        if listener is not None:
            listener.end(final)
        self._drop_if_idle(remote)

    # -- messages -----------------------------------------------------------------

    def on_reply(self, reply: Any) -> None:
        if not isinstance(reply, list) or not reply:
            if self._pending:
                future = self._pending.pop(0)
                if not future.done():
                    future.set_result(reply)
            elif isinstance(reply, Exception):
                self._refused(reply)
            return
        kind = reply[0]
        if kind == b"message" and reply[1] == self._control:
            self._on_control(reply[2])
        elif kind == self._message_kind:
            remote = self._remote.get(reply[1])
            if remote is not None:
                self._message(remote, reply[2])
        elif kind == b"subscribe" and reply[1] == self._control:
            self._control_ready.set()
        elif kind == self._confirm_kind:
            remote = self._remote.get(reply[1])
            if remote is not None and not remote.subscribed:
                remote.subscribed = True
                if remote.listener is not None:
                    self._catch_up(remote)
                remote.wake()
        elif kind == b"sunsubscribe":
            channel = reply[1]
            if self._dropping[channel]:
                self._dropping[channel] -= 1
                if not self._dropping[channel]:
                    del self._dropping[channel]
                return
            remote = self._remote.pop(channel, None)  # its slot moved to another master
            if remote is not None:
                self._let_go(remote)
            self._on_moved()

    def _refused(self, error: Exception) -> None:
        """A subscription refused (its slot is served elsewhere now): every stream not yet
        subscribed here is let go, to read the log and follow again where it lives."""
        log.debug("redis reader: %s", error)
        for channel, remote in list(self._remote.items()):
            if not remote.subscribed:
                del self._remote[channel]
                self._let_go(remote)
        self._on_moved()

    def _let_go(self, remote: _Remote) -> None:
        remote.subscribed = False
        listener, remote.listener = remote.listener, None
        remote.wake()
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.end(False)

    def _message(self, remote: _Remote, data: bytes) -> None:
        if data[:1] == b"h":  # the log holds this many frames: read what is missing
            remote.wake()
            if (remote.listener is not None and not remote.catching_up
                    and int(data[1:]) > remote.next_index):
                self._catch_up(remote)
            return
        colon = data.index(b":")
        index = int(data[1:colon])
        is_frame = data[:1] == b"f"
        frame = data[colon + 1:] if is_frame else None  # None: the end
        final = not is_frame and data[colon + 1:] == b"done"
        remote.wake()
        if remote.listener is None:
            return
        if remote.catching_up:
            held = remote.held
            if held is not None and len(held) < HELD_MAX:
                held.append((index, frame, final))
            else:
                remote.held = None  # too many: read the log again afterwards
            return
        self._take(remote, index, frame, final)

    def _take(self, remote: _Remote, index: int, frame: bytes | None, final: bool) -> None:
        if index < remote.next_index:
            return  # had it already (from the log)
        if index > remote.next_index:
            self._catch_up(remote)  # a gap: the log has what is missing
            return
        listener = remote.listener
        assert listener is not None
        if frame is None:
            self._end(remote, final=final)
            return
        remote.next_index = index + 1
        listener.frame(frame, index)

    def _catch_up(self, remote: _Remote) -> None:
        remote.catching_up = True
        remote.held = []
        task = asyncio.create_task(self._read_log(remote), name="redis catch-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_log(self, remote: _Remote) -> None:
        """Deliver the log from the listener's position; then what arrived meanwhile."""
        try:
            while remote.listener is not None:
                try:
                    batch = await self._read_range(remote.stream_id, remote.next_index)
                except StoreUnavailable:
                    batch = None
                if remote.listener is None:
                    break
                if batch is None or batch.ended:
                    for frame in batch.frames if batch is not None else ():
                        if remote.listener is None:
                            break
                        remote.next_index += 1
                        remote.listener.frame(frame, remote.next_index - 1)
                    remote.catching_up = False
                    self._end(remote, final=batch is not None and not batch.lost)
                    return
                for frame in batch.frames:
                    if remote.listener is None:
                        break
                    remote.next_index += 1
                    remote.listener.frame(frame, remote.next_index - 1)
                held = remote.held
                if batch.frames or held is None:
                    remote.held = []
                    continue  # a long log comes in several reads; or messages were dropped
                remote.catching_up = False
                remote.held = None
                for index, message, final in held:
                    if remote.listener is None or remote.catching_up:
                        break
                    self._take(remote, index, message, final)
                return
        finally:
            if remote.listener is None:
                remote.catching_up = False
                self._drop_if_idle(remote)

    # -- the connection -----------------------------------------------------------

    def _send(self, data: bytes) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None and self.connected.is_set():
            protocol.transport.write(data)

    async def _run(self) -> None:
        while True:
            try:
                await self._connect()
                assert self._protocol is not None
                await self._protocol.lost
                log.warning("redis reader: connection lost; reconnecting")
            except (OSError, StoreUnavailable) as exc:  # TimeoutError too
                log.debug("redis reader: %s", exc)
            except Exception:
                log.exception("redis reader failed; reconnecting")
            finally:
                self.connected.clear()
                self.tried.set()
                self._release_all()
            self._on_moved()  # a master gone may be a failover: the map may have changed
            await asyncio.sleep(RECONNECT_DELAY)

    async def _connect(self) -> None:
        options = self._options()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if "path" in options:
                _, protocol = await loop.create_unix_connection(
                    lambda: _Protocol(self), options["path"])
            else:
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self), options.get("host", "localhost"),
                    int(options.get("port", 6379)), ssl=options.get("tls"))
            self._protocol = protocol
            assert protocol.transport is not None
            password = options.get("password")
            if password:
                username = options.get("username")
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                reply = await self._command(protocol.transport, command(*auth))
                if isinstance(reply, Exception):
                    raise StoreUnavailable(f"redis reader: {reply}")
            reply = await self._command(protocol.transport,
                                        command("CLIENT", "SETNAME", self._client_name))
            if isinstance(reply, Exception):
                raise StoreUnavailable(f"redis reader: {reply}")
            if self._control is not None:
                self._control_ready.clear()
                protocol.transport.write(command("SUBSCRIBE", self._control))
                await self._control_ready.wait()
            self.connected.set()
        # Signals published before the subscription took effect: caught up from Redis.
        if self._control is not None:
            await self._on_listening()
        self.tried.set()

    def _options(self) -> dict[str, Any]:
        target = self._target
        if isinstance(target, Endpoint):
            return {"host": target.host, "port": target.port, "username": target.username,
                    "password": target.password}
        assert parse_url is not None
        options: dict[str, Any] = parse_url(target)  # type: ignore[no-untyped-call]
        if target.startswith("rediss:"):
            options["tls"] = ssl.create_default_context()
        return options

    async def _command(self, transport: asyncio.Transport, packed: bytes) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(future)
        transport.write(packed)
        return await future

    def _release_all(self) -> None:
        """The connection is gone: every follower reads the log instead."""
        for future in self._pending:
            if not future.done():
                future.cancel()
        self._pending.clear()
        remotes = list(self._remote.values())
        self._remote.clear()
        self._dropping.clear()
        for remote in remotes:
            self._let_go(remote)
