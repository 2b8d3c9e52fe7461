"""The event-loop choice, in one place: `--loop auto|asyncio|uvloop` (SSESERVER_LOOP).

uvloop is libuv's loop in C: each event's task step, timer and socket write cost less than
on asyncio's own loop (docs/performance.md), so `auto` picks it when it is installed (a
dependency on Linux and macOS). `python -m sseserver`, its workers and gunicorn's worker
all resolve the choice here.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine

from .errors import ConfigError
from .option_values import LOOPS, LoopName


def resolved_loop(choice: LoopName) -> LoopName:
    """`auto` is uvloop when it can be imported; an explicit choice must be available."""
    if choice not in LOOPS:
        raise ConfigError(f"--loop={choice!r} (SSESERVER_LOOP): must be auto, asyncio or uvloop")
    installed = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not installed:
        raise ConfigError("--loop uvloop (SSESERVER_LOOP): uvloop is not installed: "
                          "pip install uvloop")
    if choice == "auto":
        return "uvloop" if installed else "asyncio"
    return choice


def loop_factory(loop: LoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What builds the chosen loop; None is asyncio's default."""
    if resolved_loop(loop) != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[None, None, None], loop: LoopName) -> None:
    """asyncio.run() on the chosen event loop."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(main)
