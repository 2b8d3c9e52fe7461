"""Waiting for an effect with a deadline, instead of sleeping a fixed time and then
asserting it: on a busy machine an effect comes late, never early, so a fixed sleep either
races it or wastes time. `until` polls and fails with what it was waiting for."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL_EVERY = 0.01


async def until(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 5.0, what: str = "",
) -> float:
    """Poll `check` (a function or a coroutine function) until it returns true; the
    seconds that took. AssertionError, naming `what`, if it is still false after
    `within` seconds."""
    started = time.monotonic()
    deadline = started + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what or check!r}")
        await asyncio.sleep(POLL_EVERY)
