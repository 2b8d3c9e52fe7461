"""Bodies that may carry images and documents: read within --max-upload-bytes, parsed and
checked away from the event loop when large, and held to --max-body-bytes when they carry
none (docs/protocol.md, "Attachments"; docs/architecture.md, "Memory bounds").

Parsing a body of tens of megabytes (`json.loads`, then the base64 checks of
attachments.py) holds the GIL for longer than a running stream may wait, so a thread would
not help: a body over `OFF_LOOP_BYTES` is parsed and validated in a small pool of worker
processes, which hands back the request (or the refusal) the same function would have
given in this process. The pool is made with the app and shut down with it; its processes
are spawned (never forked from a running loop) at the first large body, so a server that
never gets one pays nothing. Bodies are read under the same budget and deadline as every
other (bodies.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, TypeVar

from aiohttp import web

from .app_keys import BODY_BUDGET, PARSER, SETTINGS
from .attachments import attachment_count
from .bodies import read_body
from .config import Settings
from .errors import ServerError, TooLarge
from .providers import GenerationRequest

T = TypeVar("T")
Parse = Callable[[bytes, Settings], T]
Generation = Callable[[T], GenerationRequest]  # what a parse's result asks to generate
# Bodies up to this size are parsed in the loop: a megabyte of JSON takes a few ms.
OFF_LOOP_BYTES: Final = 1024 * 1024
# Two processes: a third upload waits for one, rather than taking a core from the loop.
POOL_PROCESSES: Final = 2

_worker_settings: Settings | None = None


def _start_worker(settings: Settings) -> None:
    global _worker_settings
    _worker_settings = settings
    # Parsing is work that can wait; the event loop's streams cannot. Where a worker
    # shares a core with the loop (one core, or a pinned process, whose workers inherit
    # its affinity), the lowest priority lets the loop run as soon as it is ready.
    with contextlib.suppress(OSError):
        os.nice(19)


def _parse_in_worker(parse: Parse[T], generation: Generation[T], body: bytes) -> T:
    assert _worker_settings is not None
    return checked(parse, generation, body, _worker_settings)


def checked(parse: Parse[T], generation: Generation[T], body: bytes, settings: Settings) -> T:
    """`parse(body)`, where a body over --max-body-bytes must carry an image or a document:
    refused at once when it cannot (no `"source"` or `"file"` in it), else once parsed."""
    plain = len(body) > settings.max_body_bytes
    too_large = TooLarge(f"The body is larger than {settings.max_body_bytes} bytes.")
    if plain and b'"source"' not in body and b'"file"' not in body:
        raise too_large
    result = parse(body, settings)
    if plain and not attachment_count(generation(result)):
        raise too_large
    return result


class BodyParser:
    """Parses bodies in this process when small, in the worker pool when large."""

    def __init__(self, settings: Settings, processes: int = POOL_PROCESSES) -> None:
        self._settings = settings
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self.offloaded = 0  # bodies parsed in a worker process

    async def parse(self, parse: Parse[T], generation: Generation[T], body: bytes) -> T:
        """`checked(parse, generation, body)`, here or in a worker process."""
        if len(body) <= OFF_LOOP_BYTES:
            return checked(parse, generation, body, self._settings)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self._settings,),
            )
        self.offloaded += 1
        try:
            future = self._pool.submit(_parse_in_worker, parse, generation, body)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            self.close()
            raise ServerError("The request could not be read; try again.") from None

    def close(self) -> None:
        """Stop the workers; a parse still waiting is cancelled."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


async def read_request(
    request: web.Request, parse: Parse[T], generation: Generation[T],
) -> T:
    """A POST body within --max-upload-bytes, parsed by `parse` (a module's function, so
    that a worker process can run it too); one over --max-body-bytes must hold an image or
    a document. The body counts against --max-body-bytes-total until it is parsed."""
    settings = request.app[SETTINGS]
    async with read_body(request, request.app[BODY_BUDGET], settings,
                         limit=settings.max_upload_bytes) as body:
        return await request.app[PARSER].parse(parse, generation, body)
