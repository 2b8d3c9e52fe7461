"""Admission by event-loop lag: shed new generations before running streams slow down.

A timer asks to run every SAMPLE_EVERY seconds; how late it runs is the loop's lag, the
wait every ready callback (each stream's next frame) has on top of its own work. Every
sample goes to the `sseserver_event_loop_lag_seconds` histogram.

The loop counts as overloaded when the median of the last WINDOW seconds of samples is
over --max-loop-lag-ms: a loop that is behind most of the time (saturated, or starved of
CPU), not one collector pause or one burst of connections. While it is,
`Generations.start` refuses with 503 and Retry-After (`Overloaded`, counted under
`overload`), and running streams keep the whole process.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Final

from prometheus_client import Histogram

SAMPLE_EVERY: Final = 0.05
WINDOW: Final = 0.5


class LoopLag:
    """Samples the running loop's lag; `overloaded` says whether to shed new work."""

    def __init__(self, limit_ms: int, histogram: Histogram) -> None:
        self._limit = limit_ms / 1000
        self._histogram = histogram
        self._window = max(1, round(WINDOW / SAMPLE_EVERY))  # samples
        self._recent: collections.deque[float] = collections.deque(maxlen=self._window)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    @property
    def overloaded(self) -> bool:
        recent = self._recent
        if not self._limit or len(recent) < self._window:
            return False
        return sorted(recent)[len(recent) // 2] > self._limit

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + SAMPLE_EVERY
        self._handle = loop.call_at(self._due, self._sample)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def record(self, lag: float) -> None:
        """One sample, in seconds."""
        self._recent.append(lag)
        self._histogram.observe(lag)

    def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.record(max(0.0, now - self._due))
        self._due = now + SAMPLE_EVERY
        self._handle = loop.call_at(self._due, self._sample)
