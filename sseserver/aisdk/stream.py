"""One response of the chat route: a stream's frames, from its first, as UI message
chunks (chunks.py), then its live frames as they are stored, until its end or the client's.
The serving itself (join, read, ping, leave, its access-log line) is serving.py's, as for
our own route; this is the framing.

A chat response reads the store (store.read, which wakes it at each append) rather than
being pushed to by the fan-out: the fan-out writes one byte string to all of a stream's
followers, and these want other bytes. The native routes' path is untouched. An AI SDK chat
has one reader per reply, so there is nothing to share.

When the response has written a stream's end (the client has all of it), the chat's name
for the stream is let go: the reconnect route then answers 204, as the AI SDK expects once
a reply is over. A client that was away when its reply ended still finds it, once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from ..errors import StoreUnavailable
from ..serving import STORE_UNAVAILABLE, Opened, Subscribers, serve
from ..sse import SSE_HEADERS
from ..store.base import Batch, StreamStore
from .chunks import LOST, UIChunks
from .encoding import chunk

log = logging.getLogger("sseserver.aisdk")

# The AI SDK's UI_MESSAGE_STREAM_HEADERS (its ui-message-stream-headers.ts), with our
# content type (which names the charset) and headers.
UI_STREAM_HEADERS: Final = SSE_HEADERS | {"x-vercel-ai-ui-message-stream": "v1"}
STORE_UNAVAILABLE_CHUNK: Final = chunk({"type": "error", "errorText": STORE_UNAVAILABLE})


async def serve_chat(
    request: web.Request, chat_id: str, stream_id: str, chunks: UIChunks, *, resumed: bool
) -> web.StreamResponse:
    """The stream `stream_id` from its start as UI message chunks (`chunks`, made for this
    response); a 204 when it is no longer held."""
    return await serve(request, ChatReply(chat_id, stream_id, chunks, resumed))


class ChatReply:
    """The framing of one chat response: it keeps the response's UI chunk state."""

    __slots__ = ("chat_id", "chunks", "resumed", "stream_id")

    headers: Mapping[str, str] = UI_STREAM_HEADERS
    retry = False  # the AI SDK reads with fetch, not EventSource
    followed = False  # its bytes are its own: it reads the store
    store_unavailable = STORE_UNAVAILABLE_CHUNK

    def __init__(self, chat_id: str, stream_id: str, chunks: UIChunks, resumed: bool) -> None:
        self.chat_id = chat_id
        self.stream_id = stream_id
        self.resumed = resumed
        self.chunks = chunks

    async def open(self, request: web.Request, subscribers: Subscribers
                   ) -> Opened | web.StreamResponse:
        batch = await subscribers.store.read(self.stream_id, 0, wait=0)
        if batch is None:
            return web.Response(status=204)
        return Opened(self.stream_id, 0, batch, self.resumed)

    def frames(self, stream_id: str, start: int, batch: Batch) -> list[bytes]:
        out: list[bytes] = []
        for frame in batch.frames:
            self.chunks.frame(frame, out)
        if batch.lost:
            self.chunks.fail(LOST, out)
        elif batch.ended:
            self.chunks.cut_short(out)
        return out

    async def delivered(self, store: StreamStore, stream_id: str) -> None:
        """The chat no longer names the stream: its reconnect answers 204 from now on.
        Done before anything else once the end is written, so a client that reconnects at
        once already finds nothing to resume."""
        try:
            await store.unbind(self.chat_id, stream_id)
        except StoreUnavailable as exc:  # it goes with the stream, at the window's end
            log.debug("chat %s: could not let go of %s: %s", self.chat_id, stream_id, exc)
