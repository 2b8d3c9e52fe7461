"""One SSE response of a stored stream, whatever its framing: the one loop both SSE routes
run (subscriber.py for ours, aisdk/stream.py for the AI SDK's chat).

    open ─▶ first write ─▶ caught up? ── yes ─▶ follow: the fan-out writes each new
    (the route's)  ▲                            frame to the socket itself (fanout.py)
                   └── read the store, write (or ping) ◀── pushes stopped ─┘
                                            ended, freed, or the client gone ─▶ leave

A `Framing` says what differs between the routes: which stream the request asks for, its
headers, how a batch of stored frames is written, and whether the fan-out may write to it.
Everything else is here once: the join and leave, every write under the `--send-timeout`
deadline, in writes of at most MAX_WRITE_BYTES, the ping after `--heartbeat` seconds of
silence, the store-unavailable end, the disconnect label of each way a response is cut, and
its one access-log line.

This coroutine is the route's handler itself (subscriber.py binds it with functools.partial),
so an open stream holds one coroutine of ours (docs/performance.md, "Memory per open
stream"). Memory per subscriber is bounded: frames live once in the store, and a write that
stays blocked (the client stopped reading) for `--send-timeout` drops the subscriber; it can
resume later. A client that disconnects cancels this handler (the server runs with handler
cancellation), so the store hears `leave()` at once, even while the upstream is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

from aiohttp import web

from .access_log import EventStreamResponse, access_logger
from .app_keys import SUBSCRIBERS
from .errors import SlowSubscriber, StoreUnavailable
from .fanout import Fanout, Follower
from .guard import error_answer, note_gone
from .metrics import Live
from .sockets import watch_for_half_open
from .sse import PING, encode_retry
from .store.base import Batch

if TYPE_CHECKING:
    from .config import Settings
    from .generations import Generations
    from .metrics import Metrics
    from .store.base import StreamStore

log = logging.getLogger("sseserver.subscriber")

# Frames go out in writes of at most this many bytes (and at least one frame), so a replay
# of a long backlog is not copied into one huge buffer. With aiohttp's own rule (drain
# once 64 KiB were written since the last drain, and drain waits while the transport holds
# more than its 64 KiB high-water mark), a subscriber holds at most about
# 2 × 64 KiB + one write of kernel-unsent bytes: see WRITE_BUFFER_CAP.
MAX_WRITE_BYTES: Final = 64 * 1024
WRITE_BUFFER_CAP: Final = 2 * 64 * 1024 + MAX_WRITE_BYTES

# What a response says, in its own framing, when the stream store stopped answering.
STORE_UNAVAILABLE: Final = "Lost contact with the stream store; reconnect to resume."


class Subscribers:
    """What the app's SSE responses share; one per app."""

    def __init__(self, store: StreamStore, fanout: Fanout, settings: Settings,
                 metrics: Metrics, generations: Generations) -> None:
        self.store = store
        self.fanout = fanout
        self.settings = settings
        self.metrics = metrics
        self.generations = generations
        # Set once the server stops: a subscriber cut then is not a client that left.
        self.stopping = False


class Opened(NamedTuple):
    """What a request asks to watch, found before its response begins."""

    stream_id: str
    start: int  # the index of the first frame to write
    batch: Batch  # what the store held from `start` on, read without waiting
    resumed: bool  # a client coming back (counted in sseserver_resumes_total)


class Framing(Protocol):
    """What one kind of SSE response does its own way."""

    headers: Mapping[str, str]
    retry: bool  # the first write carries `retry:` (for EventSource)
    followed: bool  # the fan-out may write its frames, as they are, to the socket
    store_unavailable: bytes  # the frame that ends a response the store stopped serving

    async def open(self, request: web.Request, subscribers: Subscribers
                   ) -> Opened | web.StreamResponse:
        """The stream to serve, or the whole answer (a 204); raises a refusal."""
        ...

    def frames(self, stream_id: str, start: int, batch: Batch) -> list[bytes]:
        """What to write for `batch`, read at `start`: one SSE event per item."""
        ...

    async def delivered(self, store: StreamStore, stream_id: str) -> None:
        """The stream's end was written: the client has all of it."""
        ...


async def serve(request: web.Request, framing: Framing) -> web.StreamResponse:
    """The stream `framing` opens for this request, from its resume point to its end or
    the client's. Refusals before the response begins are JSON errors (guard.py)."""
    started = time.monotonic()
    batch: Batch | None  # the last read, until it is written
    subscribers = request.app[SUBSCRIBERS]
    store, settings, metrics = subscribers.store, subscribers.settings, subscribers.metrics
    try:
        opened = await framing.open(request, subscribers)
        if isinstance(opened, web.StreamResponse):
            return opened
        stream_id, start, batch, resumed = opened
        del opened  # holds the first batch
        if resumed:
            metrics.resumes.inc()
        response = EventStreamResponse(headers=framing.headers)
        await response.prepare(request)
    except asyncio.CancelledError:
        note_gone(request, started)
        raise
    except Exception as exc:
        return error_answer(request, exc)
    watch_for_half_open(request, settings.send_timeout)
    live = metrics.live
    live.subscribers += 1
    gone: str | None = None  # why the response ended before the stream, if it did
    ending = "complete"  # how it ended, for its access-log line
    sent = 0  # body bytes this handler wrote (a follower counts its own)
    transport = request.transport
    # Pushed frames are framed as HTTP/1.1 chunks; an HTTP/1.0 response is not chunked,
    # so such a (rare) client always reads.
    chunked = response.headers.get("Transfer-Encoding") == "chunked"  # set by prepare()
    # The headers went out with prepare(); an open stream need not hold them for its life
    # (docs/performance.md, "Memory per open stream").
    response.headers.clear()
    follower = (Follower(transport, live)
                if framing.followed and transport is not None and chunked else None)
    fanout = subscribers.fanout
    try:
        await store.join(stream_id)
        # The first write: retry: and whatever is already there, in as few writes as can be.
        retry = encode_retry(settings.retry_ms) if framing.retry else None
        while True:
            events = framing.frames(stream_id, start, batch)
            start += len(batch.frames)
            ended = batch.ended
            del batch  # not held while the stream is followed
            for data in _writes(events if retry is None else [retry, *events]):
                sent += await _write(response, data, settings.send_timeout, live)
            live.events_sent += len(events)
            retry = None
            del events
            if ended:
                await framing.delivered(store, stream_id)
                break
            if follower is not None and fanout.follow(stream_id, start, follower):
                try:
                    await follower.follow_from(start)
                finally:
                    fanout.unfollow(stream_id, follower)
                start = follower.next_index
                if follower.ended:
                    await framing.delivered(store, stream_id)
                    break
                # Otherwise pushes stopped: the store says whether the stream went on,
                # ended another way, or the socket fell behind; read before following.
            next_batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if next_batch is None:  # gone before its end reached this client: say so
                ending = "freed"
            batch = vanished(start) if next_batch is None else next_batch
            if not (batch.frames or batch.lost or batch.ended):  # --heartbeat of silence
                sent += await _write(response, PING, settings.send_timeout, live)
    except StoreUnavailable as exc:
        ending = "store_unavailable"
        log.warning("subscriber of %s ended: %s", stream_id, exc)
        with contextlib.suppress(SlowSubscriber, ConnectionError):
            sent += await _write(response, framing.store_unavailable, settings.send_timeout,
                                 live)
    except SlowSubscriber:
        gone = "slow"
        log.info("dropped slow subscriber of %s after %.0fs of blocked writes",
                 stream_id, settings.send_timeout)
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        gone = "client_gone"  # the client went away between two writes
    except asyncio.CancelledError:
        # Handler cancellation: the client closed (or vanished), the shared timer
        # dropped a slow follower, or shutdown cut us off.
        if subscribers.stopping:
            gone = "shutdown"
        elif follower is not None and follower.slow:
            gone = "slow"
        else:
            gone = "client_gone"
        raise
    except Exception:  # a bug: the response has begun, so it can only end here
        ending = "error"
        log.exception("subscriber of %s failed", stream_id)
    finally:
        live.subscribers -= 1
        if gone is not None:
            metrics.disconnects.labels(gone).inc()
        # Its access-log line, before any await: a second cancel must not lose it.
        if follower is not None:
            sent += follower.sent
        logger = access_logger(request)
        if logger is not None:
            logger.stream_ended(request, sent, time.monotonic() - started, gone or ending)
        await store.leave(stream_id)
    return response


def _writes(frames: list[bytes]) -> Iterator[bytes]:
    """Join frames into writes of up to MAX_WRITE_BYTES (a bigger frame goes alone)."""
    if len(frames) <= 1:
        yield from frames
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


async def _write(response: web.StreamResponse, data: bytes, timeout: float, live: Live) -> int:
    """One write within `timeout` seconds, counted; its size."""
    await write_within(response, data, timeout)
    live.bytes_sent += len(data)
    return len(data)


async def write_within(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    """One write, or SlowSubscriber when it stays blocked for `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        raise SlowSubscriber from None


def vanished(start: int) -> Batch:
    """What a reader that has begun is told of a stream no longer held before it had the
    end: an end lost at its position. The store lost it (Redis failed over to a replica
    that had not received it, or restarted without its data), or freed it while this
    reader was behind; either way a response must not stop without its end
    (docs/protocol.md, "Error events"), and the reconnect that follows gets 204."""
    return Batch([], True, lost=True, held=start)
