"""The demo's two example tools, offered when the demo provider runs without --tools, so
that `make run` shows both kinds of tool call with no key: `current_time`, which the server
runs, and `browser_locale`, which the page answers. examples/tools.json is the same pair as
a tool file."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from .definitions import ToolSpec

DEMO_TOOLS = (
    ToolSpec(
        "current_time",
        {
            "name": "current_time",
            "description": "The current date and time in an IANA time zone.",
            "input_schema": {
                "type": "object",
                "properties": {"timezone": {
                    "type": "string", "description": "An IANA zone such as Europe/Paris",
                }},
                "required": ["timezone"],
            },
        },
        handler="sseserver.tools.demo:current_time",
    ),
    ToolSpec(
        "browser_locale",
        {
            "name": "browser_locale",
            "description": "The user's browser language and time zone, from the page.",
            "input_schema": {"type": "object", "properties": {}},
        },
    ),
)


def current_time(tool_input: dict[str, Any]) -> str:
    """The time now in the zone asked for; an unknown zone raises, which the model then
    reads as an error result."""
    zone = zoneinfo.ZoneInfo(str(tool_input["timezone"]))
    now = datetime.datetime.now(zone)
    return f"{now:%Y-%m-%d %H:%M} {now.tzname()} ({zone.key})"
