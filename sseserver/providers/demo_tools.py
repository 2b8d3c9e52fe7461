"""Claude's side of the demo's tool calls: a question about the time calls `current_time`,
one about the user's language or locale calls `browser_locale`, when the request offers
them; a message of tool results is answered by quoting them. Deterministic, like the rest
of the demo: the same conversation makes the same calls with the same ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any, Final

from .base import Block, Event, GenerationRequest, Item, Usage

_TIME: Final = re.compile(r"\btime\b", re.IGNORECASE)
_LOCALE: Final = re.compile(r"\b(locale|language)\b", re.IGNORECASE)
_ZONES: Final = {
    "tokyo": "Asia/Tokyo", "paris": "Europe/Paris", "london": "Europe/London",
    "new york": "America/New_York", "sydney": "Australia/Sydney",
}


def demo_tool_items(request: GenerationRequest) -> Iterator[Item] | None:
    """The items of a demo turn that calls a tool or answers a tool's result, or None
    when this turn is plain text."""
    last = request.messages[-1]
    offered = {tool["name"] for tool in request.tools}
    results = [b for b in last.content if b.get("type") == "tool_result"] \
        if not isinstance(last.content, str) else []
    if results:
        return _answer(results)
    if "current_time" in offered and _TIME.search(last.text):
        lowered = last.text.lower()
        zone = next((z for city, z in _ZONES.items() if city in lowered), "UTC")
        return _call(request, "current_time", {"timezone": zone}, "Let me check the clock.")
    if "browser_locale" in offered and _LOCALE.search(last.text):
        return _call(request, "browser_locale", {}, "I'll ask your browser.")
    return None


def _call(
    request: GenerationRequest, name: str, tool_input: dict[str, Any], preface: str
) -> Iterator[Item]:
    seed = f"{len(request.messages)}:{request.messages[-1].text}:{name}"
    call_id = "toolu_demo_" + hashlib.sha256(seed.encode()).hexdigest()[:20]
    yield preface
    yield Event("tool_start", {"id": call_id, "name": name})
    encoded = json.dumps(tool_input)
    middle = len(encoded) // 2
    for piece in (encoded[:middle], encoded[middle:]):
        if piece:
            yield Event("tool_input", {"id": call_id, "delta": piece})
    yield Event("tool", {"id": call_id, "name": name, "input": tool_input})
    content: list[Block] = [
        {"type": "text", "text": preface},
        {"type": "tool_use", "id": call_id, "name": name, "input": tool_input},
    ]
    yield Event("turn", {"role": "assistant", "content": content})
    yield Usage(_words(request), len(preface.split()) + 4, "tool_use")


def _answer(results: list[Block]) -> Iterator[Item]:
    for result in results:
        content = result.get("content")
        if isinstance(content, list):
            content = " ".join(b.get("text", "") for b in content if isinstance(b, dict))
        if result.get("is_error"):
            yield f"The tool reported an error: {content}\n\n"
        else:
            yield f"The tool answered: {content}\n\n"
    yield "That is what the demo's tool returned; Claude would now use it in its answer."


def _words(request: GenerationRequest) -> int:
    return sum(len(m.text.split()) for m in request.messages)
