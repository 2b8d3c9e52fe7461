"""The floor: aiohttp's plain StreamResponse, one write per event (the bench's "raw")."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from .common import (
    PeerOptions,
    frame,
    meta,
    new_stream_id,
    reply_tokens,
    run_aiohttp_peer,
    to_json,
)
from .common import usage as usage_json


def make_app(options: PeerOptions) -> web.Application:
    async def sse(request: web.Request) -> web.StreamResponse:
        question = request.query.get("message", "")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
        })
        await response.prepare(request)
        stream_id = new_stream_id()
        await response.write(b"retry: 3000\n\n" + frame(stream_id, 0, "meta",
                                                         meta(stream_id, "demo")))
        index = 1
        for token in reply_tokens(question, options.tokens):
            await asyncio.sleep(options.delay)
            await response.write(frame(stream_id, index, "message", to_json(token)))
            index += 1
        await response.write(frame(stream_id, index, "usage",
                                   usage_json(1, index - 1, "end_turn")))
        await response.write(frame(stream_id, index + 1, "done", to_json("[DONE]")))
        return response

    app = web.Application()
    app.router.add_get("/api/sse", sse)
    return app


def main() -> int:
    return run_aiohttp_peer(make_app, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
