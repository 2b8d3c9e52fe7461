"""Our SSE route, `GET /api/sse` and `GET /api/streams/{id}`: which stream a request asks
for, and its frames as they are stored. The serving itself (replay, follow, read, leave) is
serving.py's, which this module binds to its framing.

    retry ─▶ replay frames[start:] ─▶ caught up? ── yes ─▶ follow: the fan-out writes each
               (reading the store)  ▲                      new frame to the socket itself
                                    └─ fell behind (socket buffer full) ◀─┘   │
                                                                       ended ─▶ return

Following is the hot path, and it is the fan-out's (fanout.py): our frames are written to
every follower's socket as they are stored. A subscriber that is behind (a replay, a slow
reader, a backend that cannot push) reads the store instead, with a deadline on each write.

With a store in another process, two endings come from the store rather than the
generation: the store cannot be reached (an `error` event without an id, so the client's
Last-Event-ID stays on the last frame it has and a later resume misses nothing), or the
generating process died (`Batch.lost`: an `error` event with the id of the stream's end).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from .errors import BadRequest, NotFound
from .forwarded import client_address
from .guard import check
from .identity import request_user, require_user
from .ids import event_id, is_stream_id
from .ownership import may_read
from .serving import STORE_UNAVAILABLE, Opened, Subscribers, serve
from .sse import SSE_HEADERS, encode_event, to_json
from .store.base import Batch, StreamStore
from .validation import request_from_query, resume_point

# The stream store stopped answering mid-stream. No id line: an id here would either skip
# a frame or repeat one when the client resumes from it (WHATWG: an event without an id
# leaves the last event id as it was).
STORE_UNAVAILABLE_FRAME: Final = b"event: error\ndata: %s\n\n" % to_json({
    "type": "store_unavailable", "message": STORE_UNAVAILABLE,
}).encode()
_LOST: Final = {
    "type": "generation_lost",
    "message": "The server generating this reply stopped before it finished; ask again.",
}


class EventStream:
    """Our framing: the stored frames as they are, after `retry:`; followed by the fan-out.
    One per app: it keeps nothing of a response."""

    headers: Mapping[str, str] = SSE_HEADERS
    retry = True
    followed = True
    store_unavailable = STORE_UNAVAILABLE_FRAME

    async def open(self, request: web.Request, subscribers: Subscribers
                   ) -> Opened | web.StreamResponse:
        """The checks every request passes, then the stream from the resume point on. A
        stream that is not held is a 404, or a 204 for a reconnect (it came with a
        Last-Event-ID), and so is one that ended with nothing left to send: 204 tells
        EventSource to stop reconnecting (docs/protocol.md, "Ids and resume"). A resume
        point beyond the stream's events is a 400: no event of this stream ever had that
        id."""
        answer = check(request)
        if answer is not None:
            return answer
        await require_user(request)
        stream_id, start, reconnect = await _target(request, subscribers)
        store = subscribers.store
        first = await store.read(stream_id, start, wait=0)
        if first is not None and not await may_read(request, store, stream_id):
            first = None  # another user's: as if it were not held (ownership.py)
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
        return Opened(stream_id, start, first, reconnect)

    def frames(self, stream_id: str, start: int, batch: Batch) -> list[bytes]:
        """A batch's frames; when its stream's owner died, an error event at the end's
        index."""
        if not batch.lost:
            return batch.frames
        lost = encode_event("error", to_json(_LOST),
                            event_id(stream_id, start + len(batch.frames)))
        return [*batch.frames, lost]

    async def delivered(self, store: StreamStore, stream_id: str) -> None:
        """Nothing to do: the stream stays resumable for its window."""


# The route itself: serving.py's coroutine with our framing, and no coroutine of ours
# around it, so an open stream holds one (docs/performance.md, "Memory per open stream").
serve_stream: Final = functools.partial(serve, framing=EventStream())


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
    stream_id = await subscribers.generations.start(
        generation, client=client_address(request), user=request_user(request)
    )
    return stream_id, 0, False
