"""In-process stream store: the default backend, for one process."""

from __future__ import annotations

import asyncio

from .base import Batch, Signal


class _Stream:
    __slots__ = ("ended", "expiry", "frames", "signals", "subscribers", "waiters")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.ended = False
        self.subscribers = 0
        self.signals: asyncio.Queue[Signal] = asyncio.Queue()
        # One future per waiting subscriber: a shared one would be cancelled for all
        # when one waiter's heartbeat timeout cancels it.
        self.waiters: list[asyncio.Future[None]] = []
        self.expiry: asyncio.TimerHandle | None = None

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

    async def append(self, stream_id: str, frame: bytes) -> None:
        stream = self._streams[stream_id]
        assert not stream.ended, "append() after finish()"
        stream.frames.append(frame)
        stream.wake()

    async def finish(self, stream_id: str, keep_for: float) -> None:
        stream = self._streams[stream_id]
        stream.ended = True
        stream.wake()
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

    async def join(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.subscribers += 1
        if stream.subscribers == 1:
            stream.signals.put_nowait(Signal.BUSY)

    async def leave(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.subscribers -= 1
        if stream.subscribers == 0:
            stream.signals.put_nowait(Signal.IDLE)

    async def request_cancel(self, stream_id: str) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended:
            return False
        stream.signals.put_nowait(Signal.CANCEL)
        return True

    async def next_signal(self, stream_id: str) -> Signal:
        return await self._streams[stream_id].signals.get()

    def subscriber_count(self) -> int:
        return sum(stream.subscribers for stream in self._streams.values())

    async def close(self) -> None:
        for stream in self._streams.values():
            if stream.expiry is not None:
                stream.expiry.cancel()
            stream.wake()
        self._streams.clear()
