"""One response of the chat route: a stream's frames, from its first, as UI message
chunks (chunks.py), then its live frames as they are stored, until its end or the client's.

A chat response reads the store (store.read, which wakes it at each append) rather than
being pushed to by the fan-out: the fan-out writes one byte string to all of a stream's
followers, and these want other bytes. The native routes' path is untouched. An AI SDK chat
has one reader per reply, so there is nothing to share.

When the response has written a stream's end (the client has all of it), the chat's name
for the stream is let go: the reconnect route then answers 204, as the AI SDK expects once
a reply is over. A client that was away when its reply ended still finds it, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from aiohttp import web

from ..errors import SlowSubscriber, StoreUnavailable
from ..keys import METRICS, SETTINGS, STORE, SUBSCRIBERS
from ..metrics import Live
from ..sockets import watch_for_half_open
from ..sse import PING, SSE_HEADERS
from ..store.base import StreamStore
from ..subscriber import MAX_WRITE_BYTES, vanished, write_within
from .chunks import LOST, UIChunks, chunk

log = logging.getLogger("sseserver.aisdk")

# The AI SDK's UI_MESSAGE_STREAM_HEADERS (its ui-message-stream-headers.ts), with our
# content type (which names the charset) and headers.
UI_STREAM_HEADERS: Final = SSE_HEADERS | {"x-vercel-ai-ui-message-stream": "v1"}
STORE_UNAVAILABLE: Final = chunk({
    "type": "error",
    "errorText": "Lost contact with the stream store; reconnect to resume.",
})


async def serve_chat(
    request: web.Request, chat_id: str, stream_id: str, chunks: UIChunks, *, resumed: bool
) -> web.StreamResponse:
    """The stream `stream_id` from its start as UI message chunks (`chunks`, made for this
    response); a 204 when it is no longer held."""
    app = request.app
    store, settings, metrics = app[STORE], app[SETTINGS], app[METRICS]
    batch = await store.read(stream_id, 0, wait=0)
    if batch is None:
        return web.Response(status=204)
    response = web.StreamResponse(headers=UI_STREAM_HEADERS)
    await response.prepare(request)
    watch_for_half_open(request, settings.send_timeout)
    live = metrics.live
    live.subscribers += 1
    if resumed:
        metrics.resumes.inc()
    start, first = 0, True
    gone: str | None = None  # why the response ended before the stream, if it did
    try:
        await store.join(stream_id)
        while True:
            out: list[bytes] = []
            for frame in batch.frames:
                chunks.frame(frame, out)
            start += len(batch.frames)
            if batch.lost:
                chunks.fail(LOST, out)
            elif batch.ended:
                chunks.cut_short(out)
            if out:
                await _send(response, out, settings.send_timeout, live)
            elif not batch.ended and not first:
                await _send(response, [PING], settings.send_timeout, live, events=0)
            if batch.ended:  # written: this client has the end
                await _let_go(store, chat_id, stream_id)
                break
            first = False
            next_batch = await store.read(stream_id, start, wait=settings.heartbeat)
            batch = vanished(start) if next_batch is None else next_batch
    except StoreUnavailable as exc:
        log.warning("chat reply %s ended: %s", stream_id, exc)
        with contextlib.suppress(SlowSubscriber, ConnectionError):
            await _send(response, [STORE_UNAVAILABLE], settings.send_timeout, live)
    except SlowSubscriber:
        gone = "slow"
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        gone = "client_gone"
    except asyncio.CancelledError:
        gone = "shutdown" if app[SUBSCRIBERS].stopping else "client_gone"
        raise
    finally:
        live.subscribers -= 1
        if gone is not None:
            metrics.disconnects.labels(gone).inc()
        await store.leave(stream_id)
    return response


async def _let_go(store: StreamStore, chat_id: str, stream_id: str) -> None:
    """The chat no longer names the stream: its reconnect answers 204 from now on. Done
    before anything else once the end is written, so a client that reconnects at once
    already finds nothing to resume."""
    try:
        await store.unbind(chat_id, stream_id)
    except StoreUnavailable as exc:  # it goes with the stream, at the window's end
        log.debug("chat %s: could not let go of %s: %s", chat_id, stream_id, exc)


async def _send(response: web.StreamResponse, frames: list[bytes], timeout: float,
                live: Live, events: int | None = None) -> None:
    """Write `frames` in writes of up to MAX_WRITE_BYTES, each within `timeout`."""
    group: list[bytes] = []
    size = 0
    for frame in frames:
        if group and size + len(frame) > MAX_WRITE_BYTES:
            await write_within(response, b"".join(group), timeout)
            live.bytes_sent += size
            group, size = [], 0
        group.append(frame)
        size += len(frame)
    await write_within(response, b"".join(group), timeout)
    live.bytes_sent += size
    live.events_sent += len(frames) if events is None else events
