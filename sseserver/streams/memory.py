"""In-process stream store: the default backend, for one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..sse import http_chunk
from .base import Batch, LiveSink, Signal


class _Stream:
    __slots__ = ("ended", "expiry", "frames", "live", "on_signal", "subscribers", "waiters")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.ended = False
        self.subscribers = 0
        self.on_signal: Callable[[Signal], None] | None = None  # the owner's, from watch()
        # One future per waiting subscriber: a shared one would be cancelled for all
        # when one waiter's heartbeat timeout cancels it.
        self.waiters: list[asyncio.Future[None]] = []
        self.expiry: asyncio.TimerHandle | None = None
        self.live: list[LiveSink] = []  # caught-up subscribers: frames are pushed to them

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

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}

    async def open(self) -> None:
        pass

    async def healthy(self) -> bool:
        return True

    async def create(self, stream_id: str) -> None:
        self._streams[stream_id] = _Stream()

    def watch(self, stream_id: str, on_signal: Callable[[Signal], None]) -> None:
        self._streams[stream_id].on_signal = on_signal

    async def append(self, stream_id: str, frame: bytes) -> None:
        stream = self._streams[stream_id]
        assert not stream.ended, "append() after finish()"
        stream.frames.append(frame)
        live = stream.live
        if live:
            # The HTTP chunk is built once and written to every caught-up subscriber:
            # no task switch, future or timer per subscriber per event.
            chunk = http_chunk(frame)
            after = len(stream.frames)
            if len(live) == 1:  # the usual case, without building a new list per event
                if not live[0].push(chunk, after):
                    stream.live = []
            else:
                stream.live = [sink for sink in live if sink.push(chunk, after)]
        if stream.waiters:
            stream.wake()

    async def finish(self, stream_id: str, keep_for: float) -> None:
        stream = self._streams[stream_id]
        stream.ended = True
        stream.on_signal = None
        stream.wake()
        _end_all(stream)
        loop = asyncio.get_running_loop()
        stream.expiry = loop.call_later(keep_for, self._streams.pop, stream_id, None)

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
        return Batch(stream.frames[start:], stream.ended)

    def follow(self, stream_id: str, start: int, sink: LiveSink) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended or start != len(stream.frames):
            return False
        stream.live.append(sink)
        return True

    def unfollow(self, stream_id: str, sink: LiveSink) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and sink in stream.live:
            stream.live.remove(sink)

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

    async def request_cancel(self, stream_id: str) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended:
            return False
        stream.signal(Signal.CANCEL)
        return True

    def subscriber_count(self) -> int:
        return sum(stream.subscribers for stream in self._streams.values())

    async def close(self) -> None:
        for stream in self._streams.values():
            if stream.expiry is not None:
                stream.expiry.cancel()
            stream.wake()
            _end_all(stream)
        self._streams.clear()


def _end_all(stream: _Stream) -> None:
    for sink in stream.live:
        sink.end()
    stream.live = []
