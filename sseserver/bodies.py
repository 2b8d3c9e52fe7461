"""Reading a request body within bounds: its own size (`--max-body-bytes`), the bytes of
every body held at once (`--max-body-bytes-total`), and time (`--request-timeout`).

Without the shared bound, thousands of clients each sending a body just under the
per-request limit would make the server hold all of them at once. Bytes are counted as
they arrive, not as a Content-Length promises, so a client that announces a large body
and sends it slowly holds only what it has sent, and only until the deadline. Past the
shared bound a body gets 503 (the server is busy, the request is fine: try again), past
its own 413, past the deadline 408 (docs/operations.md, "Limits and timeouts").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .config import Settings
from .errors import BadRequest, BodiesFull, RequestTimeout, TooLarge, UnsupportedMediaType


class BodyBudget:
    """Bytes of request bodies held now, across requests, against one cap."""

    __slots__ = ("held", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0


def require_json(request: web.Request) -> None:
    """A JSON body's route takes nothing else: requiring it also makes a cross-site form
    post impossible without a CORS preflight."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("The body must be sent as Content-Type: application/json.")


def decoded_encodings() -> frozenset[str]:
    """The body encodings aiohttp decodes here (brotli and zstd only when their packages are
    installed); anything else would be read as if it were not encoded at all."""
    from aiohttp import compression_utils

    names = {"identity", "gzip", "x-gzip", "deflate"}
    if compression_utils.HAS_BROTLI:
        names.add("br")
    if compression_utils.HAS_ZSTD:
        names.add("zstd")
    return frozenset(names)


_DECODED = decoded_encodings()


def require_known_encoding(request: web.Request) -> None:
    """One Content-Encoding that is decoded here, or none: `foo`, `compress` or `gzip,
    gzip` would otherwise be parsed as the raw bytes they are."""
    encoding = request.headers.get("Content-Encoding")
    if encoding is None:
        return
    if encoding.strip().lower() not in _DECODED:
        accepted = ", ".join(sorted(_DECODED))
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:40]!r} is not decoded here; send one of "
            f"{accepted}, or none."
        )


@contextlib.asynccontextmanager
async def read_body(
    request: web.Request, budget: BodyBudget, settings: Settings, limit: int | None = None,
) -> AsyncIterator[bytes]:
    """The whole body, counted against `budget` until the block ends (its parsing
    included), or a refusal; at most `limit` bytes (--max-body-bytes when None)."""
    chunks: list[bytes] = []
    async with body_chunks(request, budget, settings, chunks.append, limit):
        body = b"".join(chunks)
        chunks.clear()
        yield body


@contextlib.asynccontextmanager
async def body_chunks(
    request: web.Request, budget: BodyBudget, settings: Settings,
    write: Callable[[bytes], None], limit: int | None = None,
) -> AsyncIterator[int]:
    """`read_body` for a caller that keeps the bytes itself: each chunk goes to `write`
    as it arrives; the block gets the body's size, and the bytes count against `budget`
    until it ends."""
    require_known_encoding(request)
    limit = settings.max_body_bytes if limit is None else limit
    too_large = TooLarge(f"The body is larger than {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    taken = 0
    try:
        try:
            async with asyncio.timeout(settings.request_timeout):
                async for chunk in request.content.iter_any():
                    if taken + len(chunk) > limit:
                        raise too_large
                    if budget.held + len(chunk) > budget.total:
                        raise BodiesFull
                    budget.held += len(chunk)
                    taken += len(chunk)
                    write(chunk)
        except TimeoutError:
            raise RequestTimeout from None
        except RequestPayloadError as exc:
            # A corrupt gzip or deflate body, or broken chunked framing: the parser has
            # stopped reading this connection. Marking the body read keeps aiohttp from
            # reading it again after the answer, which would log the same error twice.
            request.content.feed_eof()
            raise BadRequest(f"The body could not be read: {_reason(exc)}") from None
        yield taken
    finally:
        budget.held -= taken


def _reason(exc: RequestPayloadError) -> str:
    """aiohttp's own words ("Can not decode content-encoding: gzip") without its status
    prefix, for the client that sent the body."""
    text = str(exc).split("message:", 1)[-1].strip()
    return text.splitlines()[0][:200] if text else "its framing is broken"
