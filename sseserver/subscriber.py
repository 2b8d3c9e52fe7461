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
from .sse import PING, SSE_HEADERS, encode_event, encode_retry, to_json
from .streams.base import Batch, StoreUnavailable, StreamStore, event_id

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
    try:
        await store.join(stream_id)
        # The first write carries retry: and whatever is already there (SPEC 4).
        pending = [encode_retry(settings.retry_ms), *_frames(stream_id, start, first)]
        for data in _writes(pending):
            await _write(response, data, settings.send_timeout)
        start += len(first.frames)
        ended = first.ended
        while not ended:
            batch = await store.read(stream_id, start, wait=settings.heartbeat)
            if batch is None:  # freed under us: nothing more will come
                break
            if batch.frames or batch.lost:
                # Everything ready goes out in as few writes as possible.
                for data in _writes(_frames(stream_id, start, batch)):
                    await _write(response, data, settings.send_timeout)
                start += len(batch.frames)
            elif not batch.ended:
                await _write(response, PING, settings.send_timeout)
            ended = batch.ended
    except StoreUnavailable as exc:
        log.warning("subscriber of %s ended: %s", stream_id, exc)
        with contextlib.suppress(SlowSubscriber, ConnectionError):
            await _write(response, STORE_UNAVAILABLE_FRAME, settings.send_timeout)
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
