"""Tool handlers for the tests, named in tool files as "tests.support.tool_handlers:NAME". Each run
is recorded here, in the server's process (the tests that use them run the app in-process),
so a test can count runs and see a cancellation; `recorded` writes its runs to a file, for
tests that run `python -m sseserver`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Runs:
    inputs: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: float | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.inputs.clear()
        self.cancelled_at = None
        self.started = asyncio.Event()


RUNS = Runs()


async def lookup(tool_input: dict[str, Any]) -> str:
    """Answers at once: the question's answer."""
    RUNS.inputs.append(tool_input)
    RUNS.started.set()
    return f"answer to {tool_input.get('q')}: 42"


def add(tool_input: dict[str, Any]) -> str:
    """Synchronous, run in a thread."""
    RUNS.inputs.append(tool_input)
    return str(tool_input["a"] + tool_input["b"])


async def slow(tool_input: dict[str, Any]) -> str:
    """Sleeps for `seconds` (default 30), recording when it was cancelled."""
    RUNS.inputs.append(tool_input)
    RUNS.started.set()
    try:
        await asyncio.sleep(float(tool_input.get("seconds", 30)))
    except asyncio.CancelledError:
        RUNS.cancelled_at = time.monotonic()
        raise
    return "slept"


async def broken(tool_input: dict[str, Any]) -> str:
    RUNS.inputs.append(tool_input)
    raise RuntimeError("secret internal detail /etc/passwd")


def recorded(tool_input: dict[str, Any]) -> str:
    """For a server process: each run appended, as a JSON line, to the file the test names
    in its environment (RECORDED_RUNS), which the test then reads."""
    with open(os.environ["RECORDED_RUNS"], "a", encoding="utf-8") as runs:
        runs.write(json.dumps(tool_input) + "\n")
    return f"done: {tool_input.get('q')}"


def bad_image(tool_input: dict[str, Any]) -> list[dict[str, Any]]:
    """An image whose data is not base64 of a PNG: the API would refuse the continuation."""
    RUNS.inputs.append(tool_input)
    return [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": 'x" onerror="alert(1)'}}]
