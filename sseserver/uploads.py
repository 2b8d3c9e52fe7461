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

What crosses between the processes is kept small, because the loop's process pays for it
with the GIL held (pickling to the pool's pipe, reading and unpickling its answer): a
large body with a Content-Length is written, as it arrives, into a temporary file mapped
into this process (`BodyFile`), and the worker reads it from there; its answer names each
long string that stands verbatim in the body (an attachment's base64) by its place in the
file, and this process makes the string from the mapping, one copy. Writing each chunk to
the file as it comes also spares the loop the one large copy joining the chunks would be.
A body without a Content-Length (chunked, or compressed) is read into memory and sent
whole, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mmap
import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, TypeVar, cast

from aiohttp import web

from .app_keys import BODY_BUDGET, PARSER, SETTINGS
from .attachments import attachment_count
from .bodies import body_chunks, read_body
from .config import Settings
from .errors import BadRequest, BodiesFull, ServerError, TooLarge
from .providers import GenerationRequest

T = TypeVar("T")
Parse = Callable[[bytes, Settings], T]
Generation = Callable[[T], GenerationRequest]  # what a parse's result asks to generate
# Bodies up to this size are parsed in the loop: a megabyte of JSON takes a few ms.
OFF_LOOP_BYTES: Final = 1024 * 1024
# Two processes: a third upload waits for one, rather than taking a core from the loop.
POOL_PROCESSES: Final = 2
# Strings at least this long go back from a worker as a place in the body file.
DETACHED_CHARS: Final = 64 * 1024

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


def _parse_file_in_worker(parse: Parse[T], generation: Generation[T], path: str,
                          size: int) -> bytes:
    """`checked` on the body in the file at `path`, its result pickled with each long
    string found verbatim in the body named by its place there (`_Pickler`)."""
    assert _worker_settings is not None
    with open(path, "rb") as f:
        body = f.read(size)
    result = checked(parse, generation, body, _worker_settings)
    out = io.BytesIO()
    _Pickler(out, body).dump(result)
    return out.getvalue()


class _Pickler(pickle.Pickler):
    """Pickles a long ASCII string that stands verbatim in `body` as (start, length)."""

    def __init__(self, file: io.BytesIO, body: bytes) -> None:
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self._body = body

    def persistent_id(self, obj: Any) -> tuple[int, int] | None:
        if type(obj) is str and len(obj) >= DETACHED_CHARS and obj.isascii():
            start = self._body.find(obj.encode("ascii"))
            if start >= 0:
                return start, len(obj)
        return None


class _Unpickler(pickle.Unpickler):
    """Unpickles what `_Pickler` wrote, each named string made from `body`."""

    def __init__(self, data: bytes, body: BodyFile) -> None:
        super().__init__(io.BytesIO(data))
        self._body = body

    def persistent_load(self, pid: Any) -> str:
        start, length = pid
        return self._body.text(start, length)


class BodyFile:
    """A body of a known size, written to a temporary file as it arrives, through a
    mapping of the file into this process (so its pages count in this process's memory,
    as a body read into memory would). `close` unmaps and unlinks it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.written = 0
        self._fd, self.path = tempfile.mkstemp(prefix="sseserver-body-")
        try:
            os.ftruncate(self._fd, size)  # sparse: no space is taken before bytes come
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            os.unlink(self.path)
            raise
        self._view = memoryview(self._map)

    def write(self, chunk: bytes) -> None:
        end = self.written + len(chunk)
        if end > self.size:
            raise BadRequest("The body is longer than its Content-Length.")
        # The space for what arrived, taken as it arrives: a full disk is an OSError
        # here, where a write through the mapping into a hole would be a SIGBUS.
        try:
            os.posix_fallocate(self._fd, self.written, len(chunk))
        except OSError as exc:
            raise BodiesFull from exc
        self._view[self.written:end] = chunk
        self.written = end

    def text(self, start: int, length: int) -> str:
        """The ASCII text at `start`."""
        return str(self._view[start:start + length], "ascii")

    def close(self) -> None:
        """Unmap and remove the file: long for a large body, as the kernel lets go of
        every page, so it is run in a thread, off the loop."""
        self._view.release()
        self._map.close()
        os.close(self._fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


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
        return cast(T, await self._in_worker(_parse_in_worker, parse, generation, body))

    async def parse_file(self, parse: Parse[T], generation: Generation[T],
                         body: BodyFile) -> T:
        """`checked(parse, generation, body)` on a body written whole to `body`, in a
        worker process."""
        data = await self._in_worker(_parse_file_in_worker, parse, generation, body.path,
                                     body.size)
        return cast(T, _Unpickler(data, body).load())

    async def _in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self._settings,),
            )
        self.offloaded += 1
        try:
            return await asyncio.wrap_future(self._pool.submit(function, *args))
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
    budget, parser, size = request.app[BODY_BUDGET], request.app[PARSER], request.content_length
    file = None
    if (size is not None and OFF_LOOP_BYTES < size <= settings.max_upload_bytes
            and "Content-Encoding" not in request.headers):
        with contextlib.suppress(OSError):  # no temporary file: read it into memory
            file = BodyFile(size)
    if file is None:
        async with read_body(request, budget, settings, limit=settings.max_upload_bytes) as body:
            return await parser.parse(parse, generation, body)
    try:
        async with body_chunks(request, budget, settings, file.write,
                               limit=settings.max_upload_bytes) as taken:
            if taken != size:
                raise BadRequest("The body is shorter than its Content-Length.")
            return await parser.parse_file(parse, generation, file)
    finally:
        await asyncio.to_thread(file.close)
