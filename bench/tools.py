"""S6's tool: the cheapest handler there is, so the scenario measures the tool loop."""

from __future__ import annotations

from typing import Any


async def noop(tool_input: dict[str, Any]) -> str:
    return "ok"
