"""The stream store contract: where a generation's frames live, and how its owner hears
that subscribers came and went or that someone asked it to stop.

A store deals in stream ids, integers and bytes only, and knows nothing of HTTP, so a
backend may keep it in another process (Redis). Two callbacks stay in the process that
registers them: the owner's signal handler (`watch`) and one listener per stream
(`listen`), which the fan-out (fanout.py) registers for the stream's caught-up subscribers
in this process and which is handed each new frame with its index.

A backend in another process can fail where memory cannot: see `StoreUnavailable` and
`StreamLost` in errors.py. A stream whose owner vanished (its process died) ends with
`Batch.lost` set.

A stream may also be found by a name the client chose (`bind`): the AI SDK's chat id, so
that a reconnect that knows only its chat finds the chat's reply (docs/protocol.md, "The
AI SDK's chat route"). A name lives no longer than the stream it points at.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Signal(enum.Enum):
    """What a generation's owner is told, in order."""

    IDLE = "idle"  # the last subscriber left (or none came yet)
    BUSY = "busy"  # a subscriber is attached again
    CANCEL = "cancel"  # someone asked to stop now (DELETE)
    LOST = "lost"  # the stream was ended by another process: this one was taken for dead


class Cancel(enum.Enum):
    """What asking a stream to stop found."""

    CANCELLED = "cancelled"  # it was running; its owner is told
    ENDED = "ended"  # it is held but over already
    UNKNOWN = "unknown"  # no such stream is held


@dataclass(frozen=True, slots=True)
class Batch:
    """Frames from a read position on, and whether the stream has ended after them.

    `lost`: it ended without its own last frames because its owner died; the index after
    the frames is where that end sits (a subscriber reports it there, with an error).
    `held`: how many event ids the stream had given out when read (its frames, and the
    `lost` end, which has an id too). A read that did not wait sees it exactly; a resume
    point beyond it names an event the stream never had (docs/protocol.md, "Ids and
    resume")."""

    frames: list[bytes]
    ended: bool
    lost: bool = False
    held: int = 0


class StreamListener(Protocol):
    """Takes every frame of one stream as it is appended, in this process."""

    def frame(self, data: bytes, index: int) -> None:
        """The frame at `index` was appended."""
        ...

    def end(self, final: bool) -> None:
        """No more frames will be pushed. `final`: the stream ended normally right after
        the last frame pushed; otherwise (it was lost, the store let go or is closing)
        the subscriber reads the store to learn what follows."""
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

    async def create(self, stream_id: str, owner: str = "") -> None:
        """Hold a new, empty stream (with no subscribers), started by the user `owner`
        ("" when the server has no users)."""
        ...

    async def owner(self, stream_id: str) -> str | None:
        """The user who started the stream ("" for none), or None when it is not held."""
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

    def listen(self, stream_id: str, start: int, listener: StreamListener) -> bool:
        """Hand every frame appended from now on to `listener`, when `start` is the
        stream's end (nothing would be missed). False when it is not, when the stream has
        ended, or when the backend cannot; then subscribers read. One listener per stream."""
        ...

    def unlisten(self, stream_id: str) -> None:
        """Stop handing frames to the stream's listener (harmless when there is none)."""
        ...

    async def join(self, stream_id: str) -> None:
        """A subscriber attached."""
        ...

    async def leave(self, stream_id: str) -> None:
        """A subscriber left. Never raises: a backend that cannot tell others now must
        catch up by itself later (it is called from `finally` blocks)."""
        ...

    async def request_cancel(self, stream_id: str) -> Cancel:
        """Ask the owner to stop."""
        ...

    async def bind(self, name: str, stream_id: str) -> str | None:
        """Point `name` at `stream_id`, a stream this process created and has not finished,
        for as long as that stream is held (or until `unbind`). Returns the stream `name`
        pointed at before when that one is still held and another, else None."""
        ...

    async def bound(self, name: str) -> str | None:
        """The held stream `name` points at, or None."""
        ...

    async def unbind(self, name: str, stream_id: str) -> None:
        """Forget `name` if it still points at `stream_id` (a newer binding stays)."""
        ...

    async def close(self) -> None:
        """Free everything (app shutdown)."""
        ...
