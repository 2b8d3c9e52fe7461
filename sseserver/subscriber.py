"""One subscriber: an HTTP response that replays a stream's frames from a position and
then follows it live, until the stream ends or the client goes.

    retry ─▶ replay frames[start:] ─▶ wait for more ─┬─ frames ─▶ write them in one write
                                          ▲          ├─ silence ─▶ ": ping"
                                          └──────────┘ ended ─▶ return

Memory per subscriber is bounded: frames live once in the store, and a write that stays
blocked (the client stopped reading) for `--send-timeout` drops the subscriber; it can
resume later with Last-Event-ID. A client that disconnects cancels this handler (the
server runs with handler cancellation), so the store hears `leave()` at once, even while
the upstream is silent; a client that vanished without closing is found by the TCP options
of sockets.py. Metrics are plain integer adds per write (metrics.py, `Live`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Final

from aiohttp import web

from .config import Settings
from .metrics import Metrics
from .sockets import watch_for_half_open
from .sse import PING, SSE_HEADERS, encode_retry
from .streams.base import Batch, StreamStore

log = logging.getLogger("sseserver.subscriber")

# Frames go out in writes of at most this many bytes (and at least one frame), so a replay
# of a long backlog is not copied into one huge buffer. With aiohttp's own rule (drain
# once 64 KiB were written since the last drain, and drain waits while the transport holds
# more than its 64 KiB high-water mark), a subscriber holds at most about
# 2 × 64 KiB + one write of kernel-unsent bytes: see WRITE_BUFFER_CAP.
MAX_WRITE_BYTES: Final = 64 * 1024
WRITE_BUFFER_CAP: Final = 2 * 64 * 1024 + MAX_WRITE_BYTES


class SlowSubscriber(Exception):
    """A write stayed blocked for --send-timeout seconds."""


async def serve_stream(
    request: web.Request,
    store: StreamStore,
    settings: Settings,
    stream_id: str,
    start: int,
    first: Batch,
    metrics: Metrics,
) -> web.StreamResponse:
    """Write the stream from frame index `start`; `first` is a read already made there."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    watch_for_half_open(request, settings.send_timeout)
    await store.join(stream_id)
    live = metrics.live
    live.subscribers += 1
    gone: str | None = None  # why the response ended before the stream, if it did
    try:
        # The first write carries retry: and whatever is already there (SPEC 4).
        pending = [encode_retry(settings.retry_ms), *first.frames]
        for data in _writes(pending):
            await _write(response, data, settings.send_timeout)
            live.bytes_sent += len(data)
        live.events_sent += len(first.frames)
        start += len(first.frames)
        ended = first.ended
        while not ended:
            batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if batch is None:  # freed under us: nothing more will come
                break
            if batch.frames:
                # Everything ready goes out in as few writes as possible.
                for data in _writes(batch.frames):
                    await _write(response, data, settings.send_timeout)
                    live.bytes_sent += len(data)
                live.events_sent += len(batch.frames)
                start += len(batch.frames)
            elif not batch.ended:
                await _write(response, PING, settings.send_timeout)
                live.bytes_sent += len(PING)
            ended = batch.ended
    except SlowSubscriber:
        gone = "slow"
        log.info("dropped slow subscriber of %s after %.0fs of blocked writes",
                 stream_id, settings.send_timeout)
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        gone = "client_gone"  # the client went away between two writes
    except asyncio.CancelledError:
        # Handler cancellation: the client closed (or vanished), or shutdown cut us off.
        gone = "shutdown" if metrics.stopping else "client_gone"
        raise
    finally:
        live.subscribers -= 1
        if gone is not None:
            metrics.disconnects.labels(gone).inc()
        await store.leave(stream_id)
    return response


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
