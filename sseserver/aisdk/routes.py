"""The AI SDK's chat routes, as its `DefaultChatTransport` calls them (docs/protocol.md,
"The AI SDK's chat route"):

    POST   /api/chat               a new reply for the chat in the body, streamed as UI chunks
    GET    /api/chat/{id}/stream   the transport's reconnect: the chat's reply from its start,
                                   or 204 when there is none to resume
    DELETE /api/chat/{id}/stream   Stop: cancel the chat's reply (its upstream request closes)

They run on the native routes' generations, store, limits, access token and metrics. A chat
id names the chat's latest reply in the store (`StreamStore.bind`) for as long as that reply
is held, in memory or in Redis alike.

A new message on a chat whose reply still runs supersedes it: the old reply is cancelled
(its upstream closed) before the new one starts, so it holds no slot of the limits. The
client has moved on (it sends the history it has, without the old reply), and refusing
would leave a chat whose connection dropped stuck until its old reply ended.
"""

from __future__ import annotations

import contextlib
from typing import Final

from aiohttp import web

from ..app_keys import GENERATIONS, SETTINGS, STORE
from ..bodies import require_json
from ..errors import BadRequest, NotFound, StoreUnavailable
from ..forwarded import client_address
from ..guard import guarded
from ..identity import request_user
from ..ownership import chat_name
from ..store.base import Cancel
from ..tools.loop import offered_tools
from ..uploads import read_request
from .chunks import ToolRoles, UIChunks
from .history import CHAT_ID_MAX, chat_generation, chat_request, is_chat_id
from .stream import serve_chat

# A superseded reply is waited for this long at most, so that its slot is free again.
SUPERSEDE_WAIT: Final = 2.0

routes = web.RouteTableDef()


@routes.post("/api/chat")
@guarded
async def send_messages(request: web.Request) -> web.StreamResponse:
    require_json(request)
    turn = await read_request(request, chat_request, chat_generation)
    store, generations = request.app[STORE], request.app[GENERATIONS]
    name = chat_name(request, turn.chat_id)  # the user's own chat (ownership.py)
    running = await store.bound(name)
    if running is not None and await generations.cancel(running) is Cancel.CANCELLED:
        await generations.ended(running, SUPERSEDE_WAIT)
    # The upstream is called once the response below subscribes, after the bind: a reply
    # that ended during the bind's round trip would be bound after its end, for good.
    stream_id = await generations.start(
        turn.generation, client=client_address(request), user=request_user(request),
        wait_for_subscriber=True,
    )
    try:
        replaced = await store.bind(name, stream_id)
    except StoreUnavailable:
        with contextlib.suppress(StoreUnavailable):  # nobody could find it: stop it
            await generations.cancel(stream_id)
        raise
    if replaced is not None and replaced != running:  # a message sent at the same time
        await generations.cancel(replaced)
    # A reply that continues the client's assistant message keeps its id (docs/protocol.md,
    # "The AI SDK's chat route", "Tools").
    chunks = UIChunks(turn.continues or stream_id, _roles(request),
                      continuing=turn.continues is not None)
    return await serve_chat(request, name, stream_id, chunks, resumed=False)


@routes.get("/api/chat/{id}/stream", allow_head=False)
@guarded
async def reconnect_to_stream(request: web.Request) -> web.StreamResponse:
    name = chat_name(request, _chat_id(request))
    stream_id = await request.app[STORE].bound(name)
    if stream_id is None:
        return web.Response(status=204)  # the transport's "nothing to resume"
    chunks = UIChunks(stream_id, _roles(request))
    return await serve_chat(request, name, stream_id, chunks, resumed=True)


@routes.delete("/api/chat/{id}/stream")
@guarded
async def stop(request: web.Request) -> web.Response:
    """Stop: the reply is cancelled (or was over), and the chat lets go of it, so that a
    reconnect does not bring back a reply the user stopped. What it wrote stays readable
    at GET /api/streams/{its message id} until the resume window ends."""
    name = chat_name(request, _chat_id(request))
    store = request.app[STORE]
    stream_id = await store.bound(name)
    if stream_id is None:
        raise NotFound("This chat has no reply to stop.")
    await request.app[GENERATIONS].cancel(stream_id)
    await store.unbind(name, stream_id)
    return web.Response(status=204)


def _roles(request: web.Request) -> ToolRoles:
    return ToolRoles.of(offered_tools(request.app[SETTINGS]))


def _chat_id(request: web.Request) -> str:
    chat_id = request.match_info["id"]
    if not is_chat_id(chat_id):
        raise BadRequest(f"A chat id is 1 to {CHAT_ID_MAX} characters of A-Z a-z 0-9 - _ . ~.")
    return chat_id
