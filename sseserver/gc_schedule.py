"""The cyclic garbage collector, scheduled for a server that holds thousands of streams.

A full collection walks every object the collector tracks, and each open stream holds
dozens (aiohttp's request, parser, transport, task; the generation's task, frames and
state). With thousands of streams and new ones replacing those that end, the oldest
generation fills up often, and each full collection stops the event loop for as long as it
walks them all: every stream's next frame waits that long (docs/performance.md,
"Lateness").

So everything that survives a full collection is frozen (`gc.freeze()`): later full
collections walk only what was made since. A stream's objects are freed by reference
counting when it ends, frozen or not: a generation's objects form no cycle (generations.py
breaks the one it had). Cycles that still form somewhere, and whose objects were frozen
before they became garbage, would wait; so every UNFREEZE_EVERY seconds (by default)
everything is unfrozen and collected once, one full walk, and frozen again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any, Final

log = logging.getLogger("sseserver.collector")

UNFREEZE_EVERY: Final = 600.0


class CollectorSchedule:
    """Freezes what outlives each full collection; unfreezes and collects every
    `unfreeze_every` seconds."""

    def __init__(self, unfreeze_every: float = UNFREEZE_EVERY) -> None:
        self.unfreeze_every = unfreeze_every
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        gc.freeze()  # what start-up made lives until exit
        gc.callbacks.append(self._on_collection)
        self._timer = asyncio.get_running_loop().call_later(self.unfreeze_every, self._sweep)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    def _sweep(self) -> None:
        """Everything once: cycles that formed among frozen objects are freed."""
        started = time.perf_counter()
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        collected = gc.collect()  # the callback freezes what survives
        log.debug("full collection of %d frozen objects: %d collected in %.0f ms",
                  frozen, collected, (time.perf_counter() - started) * 1000)
        self._timer = asyncio.get_running_loop().call_later(self.unfreeze_every, self._sweep)
