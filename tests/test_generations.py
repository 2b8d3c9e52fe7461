"""Generations against the in-memory store and the demo provider, without HTTP."""

from __future__ import annotations

import asyncio

import pytest

from sseserver.config import Settings
from sseserver.generations import Ending, Generations, _Watchdog
from sseserver.providers import ChatMessage, GenerationRequest
from sseserver.providers.demo import DemoProvider
from sseserver.store.memory import MemoryStore
from tests.sse_parser import parse_all


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


async def test_a_cancel_then_shutdown_before_the_first_step_leaves_nothing_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deferred stop must give up once the task is over, even if it never ran (a
    shutdown cancelled it first), instead of rescheduling itself for ever."""
    calls = 0
    stop_pump = _Watchdog._stop_pump

    def counted(self: _Watchdog, ending: Ending) -> None:
        nonlocal calls
        calls += 1
        stop_pump(self, ending)

    monkeypatch.setattr(_Watchdog, "_stop_pump", counted)
    store = MemoryStore()
    generations = Generations(store, DemoProvider(delay_ms=10), Settings())
    stream_id = await generations.start(_request())
    assert await generations.cancel(stream_id)  # deferred: the task has not run
    await generations.close()  # cancels it before its first step
    await asyncio.sleep(0.05)
    assert generations.active == 0
    assert calls <= 3, f"the stop was retried {calls} times"
    await store.close()
