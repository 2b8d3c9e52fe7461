"""Finished streams are kept for the resume window, and also bounded in bytes
(--resume-max-mb): past the bound the oldest finished streams are freed first, so a flood
of short replies cannot grow memory without bound. Running streams are never counted or
freed here. A reconnect to a freed stream gets 204, as after its window.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from typing import Final

# What a kept frame costs beyond its bytes: its bytes object's header and the list slot
# that holds it.
FRAME_OVERHEAD: Final = sys.getsizeof(b"") + 8


def kept_size(frames: list[bytes]) -> int:
    """What a finished stream's frames cost while kept, as both stores count it."""
    return sum(map(len, frames)) + FRAME_OVERHEAD * len(frames)


class Retention:
    """The finished streams a store holds, oldest first, with their sizes."""

    __slots__ = ("_cap", "_held", "_total")

    def __init__(self, cap_bytes: int | None) -> None:
        self._cap = cap_bytes
        self._held: OrderedDict[str, tuple[int, float]] = OrderedDict()  # size, expiry
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def add(self, stream_id: str, size: int, keep_for: float) -> list[str]:
        """A stream finished; the streams to free now (oldest first) to stay in bounds."""
        now = time.monotonic()
        self._expire(now)
        self._held[stream_id] = (size, now + keep_for)
        self._total += size
        freed: list[str] = []
        while self._cap is not None and self._total > self._cap and len(self._held) > 1:
            oldest, (oldest_size, _) = self._held.popitem(last=False)
            self._total -= oldest_size
            freed.append(oldest)
        return freed

    def discard(self, stream_id: str) -> None:
        """The stream was freed by its window."""
        entry = self._held.pop(stream_id, None)
        if entry is not None:
            self._total -= entry[0]

    def _expire(self, now: float) -> None:
        held = self._held
        while held:
            stream_id, (size, expiry) = next(iter(held.items()))
            if expiry > now:
                break
            del held[stream_id]
            self._total -= size
