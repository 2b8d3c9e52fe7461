"""S5's baseline: the naive Claude relay, `messages.stream()` -> `text_stream` ->
`StreamResponse.write`, with the SDK's defaults (httpx transport, pydantic events).

Reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL (pointed at the fake upstream by the bench).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import anthropic
from aiohttp import web

from .common import (
    PeerOptions,
    frame,
    meta,
    new_stream_id,
    run_aiohttp_peer,
    to_json,
)
from .common import usage as usage_json

CLIENT = web.AppKey("client", anthropic.AsyncAnthropic)


def make_app(options: PeerOptions) -> web.Application:
    async def sse(request: web.Request) -> web.StreamResponse:
        question = request.query.get("message", "")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
        })
        await response.prepare(request)
        stream_id = new_stream_id()
        await response.write(b"retry: 3000\n\n" + frame(stream_id, 0, "meta",
                                                         meta(stream_id, "anthropic")))
        index = 1
        async with request.app[CLIENT].messages.stream(
            model="claude-sonnet-5-5", max_tokens=1024,
            messages=[{"role": "user", "content": question}],
        ) as upstream:
            async for text in upstream.text_stream:
                await response.write(frame(stream_id, index, "message", to_json(text)))
                index += 1
            final = await upstream.get_final_message()
        await response.write(frame(stream_id, index, "usage", usage_json(
            final.usage.input_tokens, final.usage.output_tokens, final.stop_reason)))
        await response.write(frame(stream_id, index + 1, "done", to_json("[DONE]")))
        return response

    async def client(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = anthropic.AsyncAnthropic()
        yield
        await app[CLIENT].close()

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_get("/api/sse", sse)
    return app


def main() -> int:
    return run_aiohttp_peer(make_app, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
