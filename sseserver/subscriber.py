"""One subscriber: an HTTP response that replays a stream's frames from a position and
then follows it live, until the stream ends or the client goes.

    retry ─▶ replay frames[start:] ─▶ caught up? ── yes ─▶ follow: the fan-out writes each
               (reading the store)  ▲                      new frame to the socket itself
                                    └─ fell behind (socket buffer full) ◀─┘   │
                                                                       ended ─▶ return

Following is the hot path, and it is the fan-out's (fanout.py). A subscriber that is behind
(a replay, a slow reader, a backend that cannot push) reads the store instead, with a
deadline on each write.

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
import time
from collections.abc import Iterator
from typing import Final

from aiohttp import web

from .access_log import EventStreamResponse
from .config import Settings
from .errors import BadRequest, NotFound, SlowSubscriber, StoreUnavailable
from .fanout import Fanout, Follower
from .forwarded import client_address
from .generations import Generations
from .guard import check, error_answer, note_gone
from .ids import event_id, is_stream_id
from .keys import SUBSCRIBERS
from .metrics import Metrics
from .sockets import watch_for_half_open
from .sse import PING, SSE_HEADERS, encode_event, encode_retry, to_json
from .store.base import Batch, StreamStore
from .validation import request_from_query, resume_point

log = logging.getLogger("sseserver.subscriber")

# Frames go out in writes of at most this many bytes (and at least one frame), so a replay
# of a long backlog is not copied into one huge buffer. With aiohttp's own rule (drain
# once 64 KiB were written since the last drain, and drain waits while the transport holds
# more than its 64 KiB high-water mark), a subscriber holds at most about
# 2 × 64 KiB + one write of kernel-unsent bytes: see WRITE_BUFFER_CAP.
MAX_WRITE_BYTES: Final = 64 * 1024
WRITE_BUFFER_CAP: Final = 2 * 64 * 1024 + MAX_WRITE_BYTES


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


async def serve_stream(request: web.Request) -> web.StreamResponse:
    """The route of `GET /api/sse` and `GET /api/streams/{id}`, from the request to the
    stream's end in one coroutine: it is all an open stream holds of ours (guard.py).

    Writes the stream from the resume point on. A stream that is not held is a 404, or a
    204 for a reconnect (it came with a Last-Event-ID), and so is one that ended with
    nothing left to send: 204 tells EventSource to stop reconnecting (docs/protocol.md,
    "Ids and resume"). A resume point beyond the stream's events is a 400: no event of
    this stream ever had that id."""
    started = time.monotonic()
    subscribers = request.app[SUBSCRIBERS]
    store, settings, metrics = subscribers.store, subscribers.settings, subscribers.metrics
    try:
        answer = check(request)
        if answer is not None:
            return answer
        stream_id, start, reconnect = await _target(request, subscribers)
        first = await store.read(stream_id, start, wait=0)
        if first is None:
            if reconnect:
                return web.Response(status=204)
            raise NotFound
        if start > first.held:  # a resume from an event this stream never had
            raise BadRequest(
                f"Last-Event-ID is beyond this stream: it has {first.held} event(s) so far."
            )
        if first.ended and not first.frames and not first.lost:
            return web.Response(status=204)  # ended, and this client has all of it
        if reconnect:
            metrics.resumes.inc()
        response = EventStreamResponse(headers=SSE_HEADERS)
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
    follower = Follower(transport, live) if transport is not None and chunked else None
    fanout = subscribers.fanout
    try:
        await store.join(stream_id)
        # The first write carries retry: and whatever is already there.
        pending = [encode_retry(settings.retry_ms), *_frames(stream_id, start, first)]
        replayed, ended = len(first.frames), first.ended
        del first  # not kept for the stream's lifetime
        for data in _writes(pending):
            await write_within(response, data, settings.send_timeout)
            live.bytes_sent += len(data)
            sent += len(data)
        del pending
        live.events_sent += replayed
        start += replayed
        may_follow = True
        while not ended:
            if may_follow and follower is not None and fanout.follow(
                stream_id, start, follower
            ):
                try:
                    await follower.follow_from(start)
                finally:
                    fanout.unfollow(stream_id, follower)
                start = follower.next_index
                ended = follower.ended
                # Otherwise pushes stopped: the store says whether the stream went on,
                # ended another way, or the socket fell behind; read before following.
                may_follow = False
                continue
            batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if batch is None:  # gone before its end reached this client: say so
                ending = "freed"
                batch = vanished(start)
            if batch.frames or batch.lost:
                # Everything ready goes out in as few writes as possible.
                for data in _writes(_frames(stream_id, start, batch)):
                    await write_within(response, data, settings.send_timeout)
                    live.bytes_sent += len(data)
                    sent += len(data)
                live.events_sent += len(batch.frames)
                start += len(batch.frames)
            elif not batch.ended:
                await write_within(response, PING, settings.send_timeout)
                live.bytes_sent += len(PING)
                sent += len(PING)
            ended = batch.ended
            may_follow = True
    except StoreUnavailable as exc:
        ending = "store_unavailable"
        log.warning("subscriber of %s ended: %s", stream_id, exc)
        with contextlib.suppress(SlowSubscriber, ConnectionError):
            await write_within(response, STORE_UNAVAILABLE_FRAME, settings.send_timeout)
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
        _log_end(request, sent, time.monotonic() - started, gone or ending)
        await store.leave(stream_id)
    return response


async def _target(request: web.Request, subscribers: Subscribers) -> tuple[str, int, bool]:
    """What the request asks to watch: (stream, first index, whether it resumes). A
    `GET /api/sse` without a resume point starts its generation here; an EventSource that
    reconnects to it sends Last-Event-ID, which names the stream, so it resumes that
    stream instead of starting a second generation."""
    resume = resume_point(request.headers.get("Last-Event-ID"), request.query.get("lastEventId"))
    path_id = request.match_info.get("id")
    if path_id is not None:  # GET /api/streams/{id}
        if not is_stream_id(path_id):
            raise NotFound
        if resume is None:
            return path_id, 0, False
        if resume[0] != path_id:
            raise BadRequest("Last-Event-ID names another stream.")
        return path_id, resume[1], True
    if resume is not None:
        return resume[0], resume[1], True
    generation = request_from_query(request.query, subscribers.settings)
    stream_id = await subscribers.generations.start(generation, client=client_address(request))
    return stream_id, 0, False


def _log_end(request: web.Request, sent: int, seconds: float, ended: str) -> None:
    """The access-log line of an SSE response that ended (access_log.py, `stream_ended`),
    when the connection logs access."""
    logger = getattr(request.protocol, "access_logger", None)
    stream_ended = getattr(logger, "stream_ended", None)
    if stream_ended is not None and logger.enabled:  # type: ignore[union-attr]
        stream_ended(request, sent, seconds, ended)


def vanished(start: int) -> Batch:
    """What a reader that has begun is told of a stream no longer held before it had the
    end: an end lost at its position. The store lost it (Redis failed over to a replica
    that had not received it, or restarted without its data), or freed it while this
    reader was behind; either way a response must not stop without its end
    (docs/protocol.md, "Error events"), and the reconnect that follows gets 204."""
    return Batch([], True, lost=True, held=start)


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


async def write_within(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    """One write, or SlowSubscriber when it stays blocked for `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        raise SlowSubscriber from None
