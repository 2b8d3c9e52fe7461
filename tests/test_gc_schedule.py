"""The garbage collector's schedule (gc_schedule.py; docs/performance.md, "Lateness"): what
outlives a full collection is frozen, so later full collections do not walk it; a cycle
frozen before it became garbage is therefore not freed by a full collection, only by the
periodic sweep, which unfreezes, collects and freezes again. The sweep's period is shortened
here from its 600 s."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from sseserver.gc_schedule import CollectorSchedule

SWEEP_EVERY = 0.2


class Node:
    """One object of a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    """The process's collector as it was: nothing frozen before or after a test."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _freed_within(ref: weakref.ref[Node], seconds: float) -> float | None:
    """When the referent was freed, in seconds from now; None if it was not."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if ref() is None:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    return None


async def test_a_frozen_cycle_is_freed_by_the_sweep_and_only_by_it() -> None:
    schedule = CollectorSchedule(unfreeze_every=SWEEP_EVERY)
    schedule.start()
    try:
        assert gc.get_freeze_count() > 0  # start-up's objects
        held = _cycle()
        keep = held()  # alive through the next full collection...
        gc.collect()
        assert gc.get_freeze_count() > 0  # ...which froze what survived it
        del keep
        gc.collect()  # a full collection does not walk frozen objects
        assert held() is not None
        freed = await _freed_within(held, 10 * SWEEP_EVERY)
        assert freed is not None, "the sweep did not free a frozen cycle"
        print(f"frozen cycle freed {freed * 1000:.0f} ms after it became garbage "
              f"(sweep every {SWEEP_EVERY * 1000:.0f} ms)")
        assert gc.get_freeze_count() > 0  # the sweep froze again what survived it
    finally:
        schedule.stop()


async def test_once_stopped_nothing_is_frozen_or_swept() -> None:
    schedule = CollectorSchedule(unfreeze_every=SWEEP_EVERY)
    schedule.start()
    schedule.stop()
    gc.unfreeze()
    held = _cycle()
    keep = held()
    gc.collect()
    assert gc.get_freeze_count() == 0  # no callback froze what survived
    del keep
    gc.collect()
    assert held() is None  # not frozen: a plain full collection frees it
    frozen_later = _cycle()
    keep = frozen_later()
    gc.freeze()
    del keep
    await asyncio.sleep(3 * SWEEP_EVERY)
    assert frozen_later() is not None  # and no sweep runs any more
