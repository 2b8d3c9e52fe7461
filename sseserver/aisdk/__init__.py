"""A backend for the AI SDK's `useChat` (Vercel's `ai` package): its chat transport's
routes, on the same generations and store as the native routes (docs/protocol.md, "The AI
SDK's chat route").

    routes.py    POST /api/chat, GET and DELETE /api/chat/{id}/stream
    history.py   the transport's body: UI messages to Claude's, validated like /api/streams
    stream.py    one response: a stream's frames as UI message chunks, replay then live
    chunks.py    the mapping of our events to UI message chunks
"""

from .routes import routes

__all__ = ["routes"]
