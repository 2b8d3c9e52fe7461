"""The fan-out: every caught-up subscriber in this process, and every raw socket write.

    store.append ─▶ StreamFanout.frame(data, index) ─▶ one HTTP chunk ─▶ transport.write
                    (the stream's one listener)         built once        per follower

Following is the hot path: the events a stream gets within one step of the event loop cost
one `transport.write`, right after that step, of a chunk built once for all of its
followers, with no task switch, future or timer per subscriber. A follower whose socket
buffer is over FOLLOW_HIGH_WATER is let go: its handler catches up by reading the store,
with aiohttp's flow control (serving.py). The store knows nothing of this: it hands
each frame and its index to the stream's one listener.

One timer (`Fanout.run`) serves every follower: a `: ping` after --heartbeat seconds without
a frame, and a drop after --send-timeout seconds of a full socket buffer (a reader that
stopped reading while the stream was silent), instead of one timer per connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from .config import Settings
from .metrics import Live, Metrics
from .sse import PING
from .store.base import StreamStore

log = logging.getLogger("sseserver.fanout")

# A follower whose socket buffer holds more than this falls back to reading (with aiohttp's
# flow control) instead of being pushed to: asyncio's default high-water mark.
FOLLOW_HIGH_WATER: Final = 64 * 1024


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk, for frames written straight to a socket after
    aiohttp has sent the chunked response headers."""
    return b"%x\r\n%b\r\n" % (len(data), data)


PING_CHUNK: Final = http_chunk(PING)


class Follower:
    """A caught-up subscriber: frames are written straight to its socket."""

    __slots__ = ("blocked_ticks", "ended", "live", "next_index", "sent", "silent_ticks", "slow",
                 "transport", "waiter", "wrote")

    def __init__(self, transport: asyncio.Transport, live: Live) -> None:
        self.transport = transport
        self.live = live
        self.next_index = 0
        self.ended = False  # the stream ended normally after the last frame pushed
        self.slow = False  # dropped by the shared timer for a write deadline overrun
        self.wrote = False  # a frame went out since the timer's last tick
        self.sent = 0  # frame bytes written to this follower, for its access-log line
        self.silent_ticks = 0
        self.blocked_ticks = 0
        self.waiter: asyncio.Future[None] | None = None

    def push(self, chunk: bytes, next_index: int, size: int, events: int = 1) -> bool:
        """Write one chunk of `events` frames (`size` bytes of them); False (and wake the
        handler) when the socket is behind."""
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size() > FOLLOW_HIGH_WATER:
            self._wake()
            return False
        transport.write(chunk)
        self.next_index = next_index
        self.wrote = True
        live = self.live
        live.events_sent += events
        live.bytes_sent += len(chunk)
        self.sent += size
        return True

    def end(self, final: bool) -> None:
        """No more pushes. Unless the stream ended normally (`final`), the handler reads
        the store, which says how it went on."""
        self.ended = final
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def follow_from(self, start: int) -> asyncio.Future[None]:
        """To await while frames are pushed: done once pushes stop (the stream ended, the
        store let go, or the socket fell behind). A future, not a coroutine: no frame held
        per open stream."""
        self.next_index = start
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter


class StreamFanout:
    """The store's listener for one stream: its followers in this process.

    The frames a stream gets within one step of the event loop (a relay turns one read of
    the upstream socket into several) are held, and go out together, in one chunk and one
    write, right after that step: a write is a system call, the dearest part of a frame.
    One callback after the step flushes every stream that got frames in it (`Fanout.hold`).
    Held frames are in the store already, so a follower that joins or falls behind
    meanwhile reads them there: they are flushed before a follower joins, and before the
    stream's end."""

    __slots__ = ("fanout", "followers", "held", "next_index", "stream_id")

    def __init__(self, fanout: Fanout, stream_id: str, start: int) -> None:
        self.fanout = fanout
        self.stream_id = stream_id
        self.next_index = start
        self.followers: list[Follower] = []
        self.held: list[bytes] | None = None  # frames of this step, a flush due after it

    def frame(self, data: bytes, index: int) -> None:
        self.next_index = index + 1
        held = self.held
        if held is not None:
            held.append(data)
        else:
            self.held = [data]
            self.fanout.hold(self)

    def flush(self) -> None:
        """Write the held frames to every follower, if any."""
        held, self.held = self.held, None
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        chunk = http_chunk(data)
        after, size, events = self.next_index, len(data), len(held)
        followers = self.followers
        if len(followers) == 1:  # the usual case, without building a new list per flush
            if not followers[0].push(chunk, after, size, events):
                self.followers = []
        else:
            self.followers = [f for f in followers if f.push(chunk, after, size, events)]
        if not self.followers:
            self.fanout.release(self)

    def end(self, final: bool) -> None:
        self.flush()
        followers, self.followers = self.followers, []
        for follower in followers:
            follower.end(final)
        self.fanout.release(self, ended=True)


class Fanout:
    """Every follower in this process, by stream, and the one timer that serves them."""

    def __init__(self, store: StreamStore, settings: Settings, metrics: Metrics) -> None:
        self._store = store
        # Ticks of a quarter of the shorter period: a ping comes within heartbeat + 25%.
        self.tick = min(settings.heartbeat, settings.send_timeout) / 4
        self._ping_ticks = max(1, round(settings.heartbeat / self.tick))
        self._drop_ticks = max(1, round(settings.send_timeout / self.tick))
        self._live = metrics.live
        self._streams: dict[str, StreamFanout] = {}
        self._members: set[Follower] = set()
        self._holding: list[StreamFanout] = []  # streams with frames held in this step

    def follow(self, stream_id: str, start: int, follower: Follower) -> bool:
        """Push the stream's frames from `start` on to `follower`; False when `start` is
        not the stream's end (the subscriber reads until it is)."""
        stream = self._streams.get(stream_id)
        if stream is not None and stream.held:
            # The newcomer read the held frames from the store: they go out before it joins.
            stream.flush()
            stream = self._streams.get(stream_id)  # released if every follower fell behind
        if stream is None:
            stream = StreamFanout(self, stream_id, start)
            if not self._store.listen(stream_id, start, stream):
                return False
            self._streams[stream_id] = stream
        elif stream.next_index != start:
            return False
        stream.followers.append(follower)
        self._members.add(follower)
        return True

    def hold(self, stream: StreamFanout) -> None:
        """`stream` holds frames: one callback right after this step flushes every such
        stream, however many streams got frames in it."""
        if not self._holding:
            asyncio.get_running_loop().call_soon(self._flush_held)
        self._holding.append(stream)

    def _flush_held(self) -> None:
        streams, self._holding = self._holding, []
        for stream in streams:
            stream.flush()  # nothing to do for one flushed meanwhile

    def unfollow(self, stream_id: str, follower: Follower) -> None:
        self._members.discard(follower)
        stream = self._streams.get(stream_id)
        if stream is not None and follower in stream.followers:
            stream.followers.remove(follower)
            if not stream.followers:
                self.release(stream)

    def release(self, stream: StreamFanout, *, ended: bool = False) -> None:
        """The stream has no follower left here (or ended): stop listening to it."""
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]
            if not ended:
                self._store.unlisten(stream.stream_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.scan()

    def scan(self) -> None:
        live = self._live
        for follower in self._members:
            transport = follower.transport
            if transport.is_closing():
                continue  # its handler is being cancelled and will unfollow
            if transport.get_write_buffer_size() > FOLLOW_HIGH_WATER:
                follower.blocked_ticks += 1
                if follower.blocked_ticks >= self._drop_ticks:
                    follower.slow = True
                    log.info("dropped a slow subscriber after %.0fs of blocked writes",
                             self._drop_ticks * self.tick)
                    transport.abort()  # the handler is cancelled and cleans up
                continue
            follower.blocked_ticks = 0
            if follower.wrote:
                follower.wrote = False
                follower.silent_ticks = 0
                continue
            follower.silent_ticks += 1
            if follower.silent_ticks >= self._ping_ticks:
                transport.write(PING_CHUNK)
                live.bytes_sent += len(PING_CHUNK)
                follower.sent += len(PING)
                follower.silent_ticks = 0
