"""The same workload on aiohttp-sse (`sse_response`, `send()` per event)."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from aiohttp_sse import sse_response

from .common import (
    PeerOptions,
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
        stream_id = new_stream_id()
        async with sse_response(request) as response:
            await response.send(meta(stream_id, "demo"), id=f"{stream_id}:0", event="meta")
            index = 1
            for token in reply_tokens(question, options.tokens):
                await asyncio.sleep(options.delay)
                await response.send(to_json(token), id=f"{stream_id}:{index}", event="message")
                index += 1
            await response.send(usage_json(1, index - 1, "end_turn"),
                                id=f"{stream_id}:{index}", event="usage")
            await response.send(to_json("[DONE]"), id=f"{stream_id}:{index + 1}", event="done")
        # Annotated so `make lint` passes without the bench extra (aiohttp_sse is Any then).
        sent: web.StreamResponse = response
        return sent

    app = web.Application()
    app.router.add_get("/api/sse", sse)
    return app


def main() -> int:
    return run_aiohttp_peer(make_app, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
