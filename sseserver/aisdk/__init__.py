"""A backend for the AI SDK's `useChat` (Vercel's `ai` package): its chat transport's
routes, on the same generations and store as the native routes (docs/protocol.md, "The AI
SDK's chat route").

    routes.py    POST /api/chat, GET and DELETE /api/chat/{id}/stream
    history.py   the transport's body: UI messages to Claude's, validated like /api/streams
    containers.py  the container a chat's replies ran in, read back from its history
    stream.py    one response: a stream's frames as UI message chunks, replay then live
    chunks.py    the mapping of our events to UI message chunks
    server_tools.py  Claude's server tools and MCP calls as tool parts (for chunks.py)
    sources.py   citations and fetched pages as sources (for chunks.py)
    encoding.py  one chunk as its SSE frame
"""

from .routes import routes

__all__ = ["routes"]
