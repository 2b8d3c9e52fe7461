"""The same workload on sse-starlette's EventSourceResponse, served by uvicorn.

uvicorn runs on the asyncio loop (like the aiohttp stacks) with httptools when it is
installed (the `bench` extra installs it), which is uvicorn's own fastest HTTP parser.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from .common import (
    PeerOptions,
    listen,
    meta,
    new_stream_id,
    parse_options,
    reply_tokens,
    to_json,
)
from .common import usage as usage_json


def make_app(options: PeerOptions) -> Starlette:
    async def sse(request: Request) -> EventSourceResponse:
        question = request.query_params.get("message", "")
        stream_id = new_stream_id()

        async def events() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(meta(stream_id, "demo"), id=f"{stream_id}:0", event="meta")
            index = 1
            for token in reply_tokens(question, options.tokens):
                await asyncio.sleep(options.delay)
                yield ServerSentEvent(to_json(token), id=f"{stream_id}:{index}", event="message")
                index += 1
            yield ServerSentEvent(usage_json(1, index - 1, "end_turn"),
                                  id=f"{stream_id}:{index}", event="usage")
            yield ServerSentEvent(to_json("[DONE]"), id=f"{stream_id}:{index + 1}", event="done")

        return EventSourceResponse(events())

    return Starlette(routes=[Route("/api/sse", sse)])


def main() -> int:
    options = parse_options(__doc__ or "")
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(make_app(options), loop="asyncio", http=http, access_log=False,
                            log_level="warning")
    uvicorn.Server(config).run(sockets=[listen(options)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
