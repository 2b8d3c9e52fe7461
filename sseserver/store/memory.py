"""In-process stream store: the default backend, for one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .base import Batch, Cancel, Signal, StreamListener
from .retention import Retention, kept_size


class _Stream:
    __slots__ = ("ended", "expiry", "frames", "listener", "name", "on_signal", "owner",
                 "subscribers", "waiters")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.frames: list[bytes] = []
        self.ended = False
        self.subscribers = 0
        self.on_signal: Callable[[Signal], None] | None = None  # the owner's, from watch()
        # One future per waiting subscriber: a shared one would be cancelled for all
        # when one waiter's heartbeat timeout cancels it.
        self.waiters: list[asyncio.Future[None]] = []
        self.expiry: asyncio.TimerHandle | None = None
        self.listener: StreamListener | None = None  # from listen(): the fan-out's
        self.name: str | None = None  # from bind()

    def signal(self, signal: Signal) -> None:
        if self.on_signal is not None:
            self.on_signal(signal)

    def wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()


class MemoryStore:
    backend = "memory"

    def __init__(self, resume_max_bytes: int | None = None) -> None:
        self._streams: dict[str, _Stream] = {}
        self._names: dict[str, str] = {}  # bind(): name -> stream, never more than streams
        self._retention = Retention(resume_max_bytes)

    async def open(self) -> None:
        pass

    async def healthy(self) -> bool:
        return True

    async def create(self, stream_id: str, owner: str = "") -> None:
        self._streams[stream_id] = _Stream(owner)

    async def owner(self, stream_id: str) -> str | None:
        stream = self._streams.get(stream_id)
        return None if stream is None else stream.owner

    def watch(self, stream_id: str, on_signal: Callable[[Signal], None]) -> None:
        self._streams[stream_id].on_signal = on_signal

    async def append(self, stream_id: str, frame: bytes) -> None:
        stream = self._streams[stream_id]
        assert not stream.ended, "append() after finish()"
        frames = stream.frames
        frames.append(frame)
        if stream.listener is not None:
            stream.listener.frame(frame, len(frames) - 1)
        if stream.waiters:
            stream.wake()

    async def finish(self, stream_id: str, keep_for: float) -> None:
        stream = self._streams[stream_id]
        stream.ended = True
        stream.on_signal = None
        stream.wake()
        _end_listener(stream, final=True)
        for freed in self._retention.add(stream_id, kept_size(stream.frames), keep_for):
            self._free(freed)
        loop = asyncio.get_running_loop()
        stream.expiry = loop.call_later(keep_for, self._expire, stream_id)

    def _expire(self, stream_id: str) -> None:
        self._drop(stream_id)
        self._retention.discard(stream_id)

    def _free(self, stream_id: str) -> None:
        """Freed before its window, to keep finished streams under --resume-max-mb."""
        stream = self._drop(stream_id)
        if stream is not None and stream.expiry is not None:
            stream.expiry.cancel()

    def _drop(self, stream_id: str) -> _Stream | None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and stream.name is not None:
            self._unbind(stream.name, stream_id)
        return stream

    async def read(self, stream_id: str, start: int, wait: float) -> Batch | None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return None
        if start >= len(stream.frames) and not stream.ended and wait > 0:
            waiter = asyncio.get_running_loop().create_future()
            stream.waiters.append(waiter)
            try:
                async with asyncio.timeout(wait):
                    await waiter
            except TimeoutError:
                pass
            finally:
                if not waiter.done():
                    waiter.cancel()
                    if waiter in stream.waiters:
                        stream.waiters.remove(waiter)
        return Batch(stream.frames[start:], stream.ended, held=len(stream.frames))

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended or start != len(stream.frames):
            return False
        stream.listener = listener
        return True

    def unlisten(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.listener = None

    async def join(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.subscribers += 1
        if stream.subscribers == 1:
            stream.signal(Signal.BUSY)

    async def leave(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.subscribers -= 1
        if stream.subscribers == 0:
            stream.signal(Signal.IDLE)

    async def request_cancel(self, stream_id: str) -> Cancel:
        stream = self._streams.get(stream_id)
        if stream is None:
            return Cancel.UNKNOWN
        if stream.ended:
            return Cancel.ENDED
        stream.signal(Signal.CANCEL)
        return Cancel.CANCELLED

    async def bind(self, name: str, stream_id: str) -> str | None:
        before = self._names.get(name)
        self._names[name] = stream_id
        self._streams[stream_id].name = name
        return before if before != stream_id and before in self._streams else None

    async def bound(self, name: str) -> str | None:
        return self._names.get(name)  # a stream's name goes with it (_drop)

    async def unbind(self, name: str, stream_id: str) -> None:
        self._unbind(name, stream_id)

    def _unbind(self, name: str, stream_id: str) -> None:
        if self._names.get(name) == stream_id:
            del self._names[name]

    def subscriber_count(self) -> int:
        return sum(stream.subscribers for stream in self._streams.values())

    async def close(self) -> None:
        for stream in self._streams.values():
            if stream.expiry is not None:
                stream.expiry.cancel()
            stream.wake()
            _end_listener(stream, final=False)
        self._streams.clear()
        self._names.clear()


def _end_listener(stream: _Stream, *, final: bool) -> None:
    listener, stream.listener = stream.listener, None
    if listener is not None:
        listener.end(final)
