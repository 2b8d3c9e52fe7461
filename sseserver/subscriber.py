"""One subscriber: an HTTP response that replays a stream's frames from a position and
then follows it live, until the stream ends or the client goes.

    retry ─▶ replay frames[start:] ─▶ caught up? ── yes ─▶ follow: the store writes each
               (reading the store)  ▲                      new frame to the socket itself
                                    └─ fell behind (socket buffer full) ◀─┘   │
                                                                       ended ─▶ return

Following is the hot path: an event costs one `transport.write` of a chunk built once for
all subscribers, with no task switch, future or timer per subscriber. Heartbeats and the
write deadline of followers come from one shared timer (`Followers`), not one per
connection. A subscriber that is behind (a replay, a slow reader, a backend that cannot
push) reads the store instead, with a deadline on each write.

Memory per subscriber is bounded: frames live once in the store, and a write that stays
blocked (the client stopped reading) for `--send-timeout` drops the subscriber; it can
resume later with Last-Event-ID. A client that disconnects cancels this handler (the
server runs with handler cancellation), so the store hears `leave()` at once, even while
the upstream is silent; a client that vanished without closing is found by the TCP options
of sockets.py. Metrics are plain integer adds per write (metrics.py, `Live`).

With a store in another process, two endings come from the store rather than the
generation: the store cannot be reached (an `error` event without an id, so the client's
Last-Event-ID stays on the last frame it has and a later resume misses nothing), or the
generating process died (`Batch.lost`: an `error` event with the id of the stream's end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Final

from aiohttp import web

from .config import Settings
from .errors import ApiError
from .metrics import Live, Metrics
from .sockets import watch_for_half_open
from .sse import PING, SSE_HEADERS, encode_event, encode_retry, http_chunk, to_json
from .streams.base import Batch, StoreUnavailable, StreamStore, event_id

log = logging.getLogger("sseserver.subscriber")

# Frames go out in writes of at most this many bytes (and at least one frame), so a replay
# of a long backlog is not copied into one huge buffer. With aiohttp's own rule (drain
# once 64 KiB were written since the last drain, and drain waits while the transport holds
# more than its 64 KiB high-water mark), a subscriber holds at most about
# 2 × 64 KiB + one write of kernel-unsent bytes: see WRITE_BUFFER_CAP.
MAX_WRITE_BYTES: Final = 64 * 1024
WRITE_BUFFER_CAP: Final = 2 * 64 * 1024 + MAX_WRITE_BYTES
# A follower whose socket buffer holds more than this falls back to reading (with aiohttp's
# flow control) instead of being pushed to: asyncio's default high-water mark.
FOLLOW_HIGH_WATER: Final = 64 * 1024
PING_CHUNK: Final = http_chunk(PING)


class Follower:
    """A caught-up subscriber: the store pushes each new frame straight to its socket."""

    __slots__ = ("blocked_ticks", "ended", "live", "next_index", "silent_ticks", "slow",
                 "transport", "waiter", "wrote")

    def __init__(self, transport: asyncio.Transport, live: Live) -> None:
        self.transport = transport
        self.live = live
        self.next_index = 0
        self.ended = False
        self.slow = False  # dropped by the shared timer for a write deadline overrun
        self.wrote = False  # a frame went out since the timer's last tick
        self.silent_ticks = 0
        self.blocked_ticks = 0
        self.waiter: asyncio.Future[None] | None = None

    def push(self, chunk: bytes, next_index: int) -> bool:
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size() > FOLLOW_HIGH_WATER:
            self._wake()  # behind: the handler catches up by reading, with flow control
            return False
        transport.write(chunk)
        self.next_index = next_index
        self.wrote = True
        live = self.live
        live.events_sent += 1
        live.bytes_sent += len(chunk)
        return True

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def follow_from(self, start: int) -> asyncio.Future[None]:
        """To await while frames are pushed: done once ended or fallen behind. A future,
        not a coroutine: no frame held per open stream."""
        self.next_index = start
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter


class Followers:
    """Every follower in this process, and the one timer that serves them all: a `: ping`
    after --heartbeat seconds without a frame, and a drop after --send-timeout seconds of
    a full socket buffer (a reader that stopped reading while the stream was silent)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        # Ticks of a quarter of the shorter period: a ping comes within heartbeat + 25%.
        self.tick = min(settings.heartbeat, settings.send_timeout) / 4
        self._ping_ticks = max(1, round(settings.heartbeat / self.tick))
        self._drop_ticks = max(1, round(settings.send_timeout / self.tick))
        self._metrics = metrics
        self._members: set[Follower] = set()

    def add(self, follower: Follower) -> None:
        self._members.add(follower)

    def discard(self, follower: Follower) -> None:
        self._members.discard(follower)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.scan()

    def scan(self) -> None:
        live = self._metrics.live
        for follower in self._members:
            transport = follower.transport
            if transport.is_closing():
                continue  # its handler is being cancelled and will discard it
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
                follower.silent_ticks = 0

# The stream store stopped answering mid-stream. No id line: an id here would either skip
# a frame or repeat one when the client resumes from it (WHATWG: an event without an id
# leaves the last event id as it was).
STORE_UNAVAILABLE_FRAME: Final = b"event: error\ndata: %s\n\n" % to_json({
    "type": "store_unavailable",
    "message": "Lost contact with the stream store; reconnect to resume.",
}).encode()
_LOST: Final = {
    "type": "generation_lost",
    "message": "The server generating this reply stopped before it finished; ask again.",
}


class SlowSubscriber(Exception):
    """A write stayed blocked for --send-timeout seconds."""


async def serve_stream(
    request: web.Request,
    store: StreamStore,
    settings: Settings,
    stream_id: str,
    start: int,
    metrics: Metrics,
    followers: Followers,
    *,
    reconnect: bool,
) -> web.StreamResponse:
    """Write the stream from frame index `start`. A stream that is not held is a 404, or
    a 204 for a reconnect (`reconnect`: it came with a Last-Event-ID), and so is one that
    ended with nothing left to send: 204 tells EventSource to stop reconnecting (SPEC 4)."""
    first = await store.read(stream_id, start, wait=0)
    if first is None:
        if reconnect:
            return web.Response(status=204)
        raise ApiError(404, "No such stream.")
    if first.ended and not first.frames and not first.lost:
        return web.Response(status=204)  # ended, and this client has all of it
    if reconnect:
        metrics.resumes.inc()
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    watch_for_half_open(request, settings.send_timeout)
    live = metrics.live
    live.subscribers += 1
    gone: str | None = None  # why the response ended before the stream, if it did
    transport = request.transport
    # Pushed frames are framed as HTTP/1.1 chunks; an HTTP/1.0 response is not chunked,
    # so such a (rare) client always reads.
    chunked = response.headers.get("Transfer-Encoding") == "chunked"  # set by prepare()
    follower = Follower(transport, live) if transport is not None and chunked else None
    try:
        await store.join(stream_id)
        # The first write carries retry: and whatever is already there (SPEC 4).
        pending = [encode_retry(settings.retry_ms), *_frames(stream_id, start, first)]
        replayed, ended = len(first.frames), first.ended
        del first  # not kept for the stream's lifetime
        for data in _writes(pending):
            await _write(response, data, settings.send_timeout)
            live.bytes_sent += len(data)
        del pending
        live.events_sent += replayed
        start += replayed
        while not ended:
            if follower is not None and store.follow(stream_id, start, follower):
                followers.add(follower)
                try:
                    await follower.follow_from(start)
                finally:
                    store.unfollow(stream_id, follower)
                    followers.discard(follower)
                start = follower.next_index
                ended = follower.ended
                continue  # ended, or fell behind: catch up by reading
            batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if batch is None:  # freed under us: nothing more will come
                break
            if batch.frames or batch.lost:
                # Everything ready goes out in as few writes as possible.
                for data in _writes(_frames(stream_id, start, batch)):
                    await _write(response, data, settings.send_timeout)
                    live.bytes_sent += len(data)
                live.events_sent += len(batch.frames)
                start += len(batch.frames)
            elif not batch.ended:
                await _write(response, PING, settings.send_timeout)
                live.bytes_sent += len(PING)
            ended = batch.ended
    except StoreUnavailable as exc:
        log.warning("subscriber of %s ended: %s", stream_id, exc)
        with contextlib.suppress(SlowSubscriber, ConnectionError):
            await _write(response, STORE_UNAVAILABLE_FRAME, settings.send_timeout)
    except SlowSubscriber:
        gone = "slow"
        log.info("dropped slow subscriber of %s after %.0fs of blocked writes",
                 stream_id, settings.send_timeout)
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        gone = "client_gone"  # the client went away between two writes
    except asyncio.CancelledError:
        # Handler cancellation: the client closed (or vanished), the shared timer dropped
        # a slow follower, or shutdown cut us off.
        if metrics.stopping:
            gone = "shutdown"
        elif follower is not None and follower.slow:
            gone = "slow"
        else:
            gone = "client_gone"
        raise
    finally:
        live.subscribers -= 1
        if gone is not None:
            metrics.disconnects.labels(gone).inc()
        await store.leave(stream_id)
    return response


def _frames(stream_id: str, start: int, batch: Batch) -> list[bytes]:
    """A batch's frames; when its stream's owner died, an error event at the end's index."""
    if not batch.lost:
        return batch.frames
    lost = encode_event("error", to_json(_LOST), event_id(stream_id, start + len(batch.frames)))
    return [*batch.frames, lost]


def _writes(frames: list[bytes]) -> Iterator[bytes]:
    """Join frames into writes of up to MAX_WRITE_BYTES (a bigger frame goes alone)."""
    if len(frames) == 1:
        yield frames[0]
        return
    group: list[bytes] = []
    size = 0
    for frame in frames:
        if group and size + len(frame) > MAX_WRITE_BYTES:
            yield b"".join(group)
            group, size = [], 0
        group.append(frame)
        size += len(frame)
    if group:
        yield b"".join(group)


async def _write(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        raise SlowSubscriber from None
