"""The process's readers (live.py's LiveReader), one per master: started as soon as the
slot map names a master, so that a first follower finds it listening, and each stream
followed on the reader of its slot's master, moved when the slot moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..base import StreamListener
from .keyspace import StreamKeys
from .live import RECONNECT_DELAY, LiveReader, ReadRange
from .shards import Endpoint, Shards

log = logging.getLogger("sseserver.redis")


class Readers:
    """The process's readers: one per master, each started as soon as the slot map names
    it (so that a first follower finds it listening); the home reader (the master of the
    process's own keys) also takes its control messages. On one Redis there is just the
    one."""

    def __init__(
        self,
        shards: Shards,
        url: str,
        token: str,
        prefix: str,
        home_key: str,
        control_channel: str,
        on_control: Callable[[bytes], None],
        on_listening: Callable[[], Awaitable[None]],
        read_range: ReadRange,
    ) -> None:
        self._shards = shards
        self._url = url
        self._token = token
        self._prefix = prefix
        self._home_key = home_key
        self._control = control_channel
        self._on_control = on_control
        self._on_listening = on_listening
        self._read_range = read_range
        self._readers: dict[str, LiveReader] = {}
        self._home: LiveReader | None = None
        self._following: dict[str, LiveReader] = {}  # stream id -> where it is followed
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.tried = asyncio.Event()

    @property
    def connected(self) -> bool:
        """The home reader listens: control messages reach this process."""
        return self._home is not None and self._home.connected.is_set()

    def start(self) -> None:
        if self._shards.cluster:
            self._shards.on_change(self._map_changed)
            self._spawn(self._first_map())
        else:
            self._start_home()

    async def _first_map(self) -> None:
        """On a cluster the readers need the slot map: until one node answers, try again."""
        while not self._closed:
            try:
                await self._shards.refresh()
                return  # _map_changed started the home reader
            except Exception as exc:
                log.debug("redis cluster: no slot map yet: %s", exc)
                self.tried.set()
                await asyncio.sleep(RECONNECT_DELAY)

    def _start_home(self) -> None:
        address = self._shards.address_of(self._home_key)
        home = self._home
        if home is not None and self._readers.get(address) is home:
            return
        if home is not None:  # a home that moved: the new one subscribes the control channel
            self._drop(self._address_of_reader(home))
        self._drop(address)  # a stream reader there is replaced by one with control
        self._home = self._reader(address, control=True)
        self._spawn(self._mirror_tried(self._home))

    async def _mirror_tried(self, reader: LiveReader) -> None:
        await reader.tried.wait()
        self.tried.set()

    def _address_of_reader(self, reader: LiveReader) -> str:
        for address, candidate in self._readers.items():
            if candidate is reader:
                return address
        return "\0"

    def _reader(self, address: str, *, control: bool = False) -> LiveReader:
        reader = self._readers.get(address)
        if reader is None:
            target: str | Endpoint = self._url
            if self._shards.cluster:
                endpoint = self._shards.endpoint(address)
                assert endpoint is not None, address
                target = endpoint
            reader = LiveReader(
                target, f"sseserver-{self._token}-reader", self._prefix,
                self._control if control else None, self._on_control, self._on_listening,
                self._read_range, sharded=self._shards.cluster, on_moved=self._moved,
            )
            self._readers[address] = reader
            reader.start()
        return reader

    def _for(self, stream_id: str) -> LiveReader | None:
        if self._closed:
            return None
        channel = StreamKeys(self._prefix, stream_id).channel
        address = self._shards.address_of(channel)
        if self._shards.cluster and self._shards.endpoint(address) is None:
            return None  # no map yet
        return self._reader(address)

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        reader = self._for(stream_id)
        if reader is None or not reader.listen(stream_id, start, listener):
            return False
        self._following[stream_id] = reader
        return True

    def unlisten(self, stream_id: str) -> None:
        reader = self._following.pop(stream_id, None)
        if reader is not None:
            reader.unlisten(stream_id)

    async def wait(self, stream_id: str, timeout: float) -> None:
        reader = self._for(stream_id)
        if reader is None:
            await asyncio.sleep(min(timeout, RECONNECT_DELAY))
            return
        await reader.wait(stream_id, timeout)

    def _moved(self) -> None:
        if self._shards.cluster and not self._closed:
            self._spawn(self._refresh())

    async def _refresh(self) -> None:
        with contextlib.suppress(Exception):
            await self._shards.refresh()

    def _map_changed(self, gone: set[str]) -> None:
        for address in gone:
            self._drop(address)
        if not self._closed:
            self._start_home()
            for address in self._shards.masters():
                self._reader(address)

    def _drop(self, address: str) -> None:
        reader = self._readers.pop(address, None)
        if reader is None:
            return
        if reader is self._home:
            self._home = None
        for stream_id, following in list(self._following.items()):
            if following is reader:
                del self._following[stream_id]
        self._spawn(reader.close())

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        readers, self._readers = list(self._readers.values()), {}
        self._home = None
        await asyncio.gather(*(r.close() for r in readers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
