"""One subscriber: an HTTP response that replays a stream's frames from a position and
then follows it live, until the stream ends or the client goes.

    retry ─▶ replay frames[start:] ─▶ wait for more ─┬─ frames ─▶ write them in one write
                                          ▲          ├─ silence ─▶ ": ping"
                                          └──────────┘ ended ─▶ return

Memory per subscriber is bounded: frames live once in the store, and a write that stays
blocked (the client stopped reading) for `--send-timeout` drops the subscriber; it can
resume later with Last-Event-ID. A client that disconnects cancels this handler (the
server runs with handler cancellation), so the store hears `leave()` at once, even while
the upstream is silent.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .config import Settings
from .sse import PING, SSE_HEADERS, encode_retry
from .streams.base import Batch, StreamStore

log = logging.getLogger("sseserver.subscriber")


class SlowSubscriber(Exception):
    """A write stayed blocked for --send-timeout seconds."""


async def serve_stream(
    request: web.Request,
    store: StreamStore,
    settings: Settings,
    stream_id: str,
    start: int,
    first: Batch,
) -> web.StreamResponse:
    """Write the stream from frame index `start`; `first` is a read already made there."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await store.join(stream_id)
    try:
        # The first write carries retry: and whatever is already there (SPEC 4).
        await _write(response, encode_retry(settings.retry_ms) + b"".join(first.frames),
                     settings.send_timeout)
        start += len(first.frames)
        ended = first.ended
        while not ended:
            batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if batch is None:  # freed under us: nothing more will come
                break
            if batch.frames:
                # Everything ready goes out in one write (one syscall, one chunk).
                await _write(response, b"".join(batch.frames), settings.send_timeout)
                start += len(batch.frames)
            elif not batch.ended:
                await _write(response, PING, settings.send_timeout)
            ended = batch.ended
    except SlowSubscriber:
        log.info("dropped slow subscriber of %s after %.0fs of blocked writes",
                 stream_id, settings.send_timeout)
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        pass  # the client went away between two writes
    finally:
        await store.leave(stream_id)
    return response


async def _write(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        raise SlowSubscriber from None
