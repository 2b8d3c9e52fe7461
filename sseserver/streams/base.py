"""The stream store contract: where a generation's frames live, and how its owner hears
that subscribers came and went or that someone asked it to stop.

Everything stored crosses this seam as stream ids, integers and bytes, so a backend may keep
it in another process (Redis, SPEC 6). Two callbacks stay in the process that registers
them: the owner's signal handler (`watch`) and a caught-up subscriber (`follow`).
A frame is stored already encoded, once, and shared by every subscriber.

A backend in another process can fail where memory cannot. Two exceptions say how:
`StoreUnavailable` (the backend cannot be reached now; the same call may work later) and
`StreamLost` (the owner's stream was ended or freed by someone else, so appending must
stop). A stream whose owner vanished (its process died) ends with `Batch.lost` set.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Signal(enum.Enum):
    """What a generation's owner is told, in order."""

    IDLE = "idle"  # the last subscriber left (or none came yet)
    BUSY = "busy"  # a subscriber is attached again
    CANCEL = "cancel"  # someone asked to stop now (DELETE)


class StoreUnavailable(Exception):
    """The backend cannot be reached (or refused the command); try again later."""


class StreamLost(Exception):
    """append() into a stream that is no longer its owner's: it was ended because the
    owner was taken for dead, or freed (the backend lost its data). Stop generating."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Frames from a read position on, and whether the stream has ended after them.

    `lost`: it ended without its own last frames because its owner died; the index after
    the frames is where that end sits (a subscriber reports it there, with an error)."""

    frames: list[bytes]
    ended: bool
    lost: bool = False


class LiveSink(Protocol):
    """A subscriber in this process that has every frame so far (see `StreamStore.follow`)."""

    def push(self, chunk: bytes, next_index: int) -> bool:
        """Take one frame, already framed as an HTTP/1.1 chunk; `next_index` is the index
        after it. False when it cannot take more now: it is then no longer followed."""
        ...

    def end(self) -> None:
        """The stream ended (after its last frame was pushed) or the store is closing."""
        ...


class StreamStore(Protocol):
    backend: str  # "memory" or "redis", for /healthz

    async def open(self) -> None:
        """Start what the backend runs in the background. Must not fail when the backend is
        unreachable: the server starts degraded and recovers when it comes back."""
        ...

    async def healthy(self) -> bool:
        """Whether the backend answers now (quickly; for /healthz)."""
        ...

    async def create(self, stream_id: str) -> None:
        """Hold a new, empty stream (with no subscribers)."""
        ...

    def watch(self, stream_id: str, on_signal: Callable[[Signal], None]) -> None:
        """For the generation's owner, right after `create` (nobody else knows the id yet):
        call `on_signal` with each signal, in order, until `finish`."""
        ...

    async def append(self, stream_id: str, frame: bytes) -> None:
        """Add the next frame; its index is the number of frames before it."""
        ...

    async def finish(self, stream_id: str, keep_for: float) -> None:
        """No more frames; keep what is there readable for `keep_for` seconds, then free it."""
        ...

    async def read(self, stream_id: str, start: int, wait: float) -> Batch | None:
        """Frames from index `start` on (a long backlog may come in several batches;
        `ended` is set only on the batch that reaches the end). When there are none yet
        and the stream goes on, wait up to `wait` seconds for one (an empty batch means the
        wait ran out). None when the stream is not held."""
        ...

    def follow(self, stream_id: str, start: int, sink: LiveSink) -> bool:
        """The fast path: when `start` is the stream's end, hand each frame appended from
        now on to `sink`, in this process, instead of the subscriber reading it. False
        when the sink is not caught up, the stream has ended, or the backend cannot
        (then the subscriber reads)."""
        ...

    def unfollow(self, stream_id: str, sink: LiveSink) -> None:
        """Stop handing frames to `sink` (harmless when it is not followed)."""
        ...

    async def join(self, stream_id: str) -> None:
        """A subscriber attached."""
        ...

    async def leave(self, stream_id: str) -> None:
        """A subscriber left. Never raises: a backend that cannot tell others now must
        catch up by itself later (it is called from `finally` blocks)."""
        ...

    async def request_cancel(self, stream_id: str) -> bool:
        """Ask the owner to stop; False when the stream is not held or has ended."""
        ...

    async def close(self) -> None:
        """Free everything (app shutdown)."""
        ...


def new_stream_id() -> str:
    """Unguessable and URL-safe, and without ':' (it separates the stream from the index)."""
    return secrets.token_urlsafe(12)


def event_id(stream_id: str, index: int) -> str:
    return f"{stream_id}:{index}"


def parse_event_id(value: str) -> tuple[str, int] | None:
    """`stream:index` from a Last-Event-ID, or None when it is not one of ours."""
    stream_id, sep, index = value.rpartition(":")
    if not sep or not stream_id or not index.isascii() or not index.isdigit() or len(index) > 9:
        return None
    if len(stream_id) > 64 or not all(c.isalnum() or c in "-_" for c in stream_id):
        return None
    return stream_id, int(index)
