"""Generations against the in-memory store and the demo provider, without HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Final

from sseserver.config import Settings
from sseserver.generations import Generations
from sseserver.providers import ChatMessage, GenerationRequest
from sseserver.providers.demo import DemoProvider
from sseserver.store.memory import MemoryStore
from tests.support.sse_parser import parse_all

# An idle event loop sleeps in the kernel and uses next to no CPU in this time; a callback
# that reschedules itself spins it, and a spinning process gets a fair share of a core even
# on a loaded machine: far more than a twentieth of this time.
IDLE_FOR: Final = 0.5


def _request() -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", "hi"),), model="claude-sonnet-5-5", system=None,
        max_tokens=1024,
    )


async def test_a_cancel_before_the_first_step_still_ends_the_stream() -> None:
    """DELETE can land before the generation's task has run at all: its stream must still
    end (usage cancelled, done), not stay open with no one to finish it."""
    store = MemoryStore()
    generations = Generations(store, DemoProvider(delay_ms=10), Settings())
    stream_id = await generations.start(_request())
    assert await generations.cancel(stream_id)  # no await has let the task start yet
    frames: list[bytes] = []
    async with asyncio.timeout(2):
        while True:  # read as a subscriber would, until the stream ends
            batch = await store.read(stream_id, len(frames), wait=1)
            assert batch is not None
            frames += batch.frames
            if batch.ended:
                break
    events = parse_all(b"".join(frames))
    assert [e.type for e in events] == ["meta", "usage", "done"]
    assert '"stop_reason":"cancelled"' in events[1].data
    await asyncio.sleep(0)  # the task's done callback
    assert generations.active == 0
    await store.close()


async def test_a_cancel_then_shutdown_before_the_first_step_leaves_the_loop_idle() -> None:
    """The deferred stop must give up once the task is over, even if it never ran (a
    shutdown cancelled it first), instead of rescheduling itself for ever: that would keep
    the event loop busy, a core at 100% with nothing to do."""
    store = MemoryStore()
    generations = Generations(store, DemoProvider(delay_ms=10), Settings())
    stream_id = await generations.start(_request())
    assert await generations.cancel(stream_id)  # deferred: the task has not run
    await generations.close()  # cancels it before its first step
    await asyncio.sleep(0.05)
    assert generations.active == 0
    cpu = time.process_time()
    await asyncio.sleep(IDLE_FOR)
    busy = time.process_time() - cpu
    assert busy < IDLE_FOR / 20, f"the loop kept busy for {busy:.3f}s of {IDLE_FOR}s idle"
    await store.close()
