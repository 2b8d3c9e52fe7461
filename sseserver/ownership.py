"""Whose a stream is: with users (identity.py), a stream and an AI SDK chat belong to the
user who started them, and to anyone else they do not exist (docs/protocol.md, "Access").

A stream's owner is kept with the stream in the store (the Redis store: in its meta hash),
so the rule holds whichever process serves the request. Another user gets exactly the
answer a stream that is not held gets (404, or 204 to a reconnect), so no answer tells
whether someone else's stream exists. A token with the `sse:read_any` scope (an
operator's console) may read any stream, but stops only its own.

A chat id is the client's choice, so two users may pick the same one: each user's chat
names live apart (`chat_name`), and one user's chat cannot even be named by another.
"""

from __future__ import annotations

from aiohttp import web

from .identity import request_user
from .store.base import StreamStore

# Between a user's id and a chat id in a chat's name; a chat id never holds it.
_CHAT_SEPARATOR = "\x1f"


async def may_read(request: web.Request, store: StreamStore, stream_id: str) -> bool:
    """Whether the request's user may read the stream (always, without users)."""
    user = request_user(request)
    if user is None or user.read_any:
        return True
    return await store.owner(stream_id) == user.id


async def may_stop(request: web.Request, store: StreamStore, stream_id: str) -> bool:
    """Whether the request's user may cancel the stream: only its owner."""
    user = request_user(request)
    if user is None:
        return True
    return await store.owner(stream_id) == user.id


def chat_name(request: web.Request, chat_id: str) -> str:
    """The name a chat's reply is bound to in the store: the chat id, in its user's own
    space when the server has users."""
    user = request_user(request)
    return chat_id if user is None else user.id + _CHAT_SEPARATOR + chat_id
