"""Running the server's tool handlers: each within --tool-timeout, the calls of one turn at
once; a result is checked (a string, or a list of `text` and `image` blocks) and bounded in
size. A handler that raises, times out or returns something else becomes an error result
the model can read, with no traceback or internal detail; the log names the tool.

A synchronous handler runs in a worker thread, so it never blocks the event loop; a
cancelled reply cannot stop that thread, only stop waiting for it. An async handler is
cancelled with the reply (Stop, DELETE, or the resume window)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from ..attachments import Attachments
from ..errors import Refused
from ..providers.base import Block
from .definitions import Handler

log = logging.getLogger("sseserver.tools")

# A result larger than this (as JSON) is not sent to the model: an error result instead.
MAX_RESULT_BYTES: Final = 1024 * 1024
FAILED: Final = "The tool failed."
TIMED_OUT: Final = "The tool did not answer in time."
WRONG_SHAPE: Final = "The tool returned a result this server cannot send."
TOO_LARGE: Final = "The tool's result was too large to send."
DENIED: Final = "The user denied this tool call."


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCall
    content: str | list[Block]
    is_error: bool = False

    def block(self) -> Block:
        """The `tool_result` block that answers the call in the next user message."""
        block: Block = {
            "type": "tool_result", "tool_use_id": self.call.id, "content": self.content,
        }
        if self.is_error:
            block["is_error"] = True
        return block

    def event(self) -> dict[str, Any]:
        """The `tool_result` event's data (docs/protocol.md, "Events")."""
        data: dict[str, Any] = {
            "tool_use_id": self.call.id, "name": self.call.name, "content": self.content,
        }
        if self.is_error:
            data["is_error"] = True
        return data


async def run_calls(
    calls: list[ToolCall], handlers: dict[str, Handler], timeout: float
) -> list[ToolOutcome]:
    """Every call's outcome, in the calls' order; the calls run at once. One call runs in
    the caller's task: no task to start, and no turn of the loop before it does."""
    if len(calls) == 1:
        return [await run_call(calls[0], handlers[calls[0].name], timeout)]
    return list(await asyncio.gather(*(run_call(c, handlers[c.name], timeout) for c in calls)))


async def run_call(call: ToolCall, handler: Handler, timeout: float) -> ToolOutcome:
    try:
        async with asyncio.timeout(timeout):
            if inspect.iscoroutinefunction(handler):
                result = await handler(dict(call.input))
            else:
                result = await asyncio.to_thread(handler, dict(call.input))
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError:
        log.warning("tool %s (%s) timed out after %gs", call.name, call.id, timeout)
        return ToolOutcome(call, TIMED_OUT, is_error=True)
    except Exception as exc:
        log.warning("tool %s (%s) failed: %s", call.name, call.id, type(exc).__name__)
        log.debug("tool %s (%s) traceback", call.name, call.id, exc_info=True)
        return ToolOutcome(call, FAILED, is_error=True)
    problem = _result_problem(result)
    if problem is not None:
        log.warning("tool %s (%s) returned %s", call.name, call.id, problem)
        return ToolOutcome(call, TOO_LARGE if problem == "too much" else WRONG_SHAPE,
                           is_error=True)
    return ToolOutcome(call, result)


def _result_problem(result: object) -> str | None:
    if isinstance(result, str):
        size = len(result.encode("utf-8", "surrogatepass"))
    elif isinstance(result, list) and all(_is_result_block(b) for b in result):
        try:
            size = len(json.dumps(result).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):
            return "a list that is not JSON"
    elif isinstance(result, list):
        return "a list that is not text and image blocks (an image's data is base64 of its type)"
    else:
        return f"a {type(result).__name__}, not a string or a list of text and image blocks"
    return "too much" if size > MAX_RESULT_BYTES else None


def _is_result_block(block: object) -> bool:
    if not isinstance(block, dict):
        return False
    if block.get("type") == "text":
        return set(block) == {"type", "text"} and isinstance(block["text"], str)
    if block.get("type") == "image" and set(block) == {"type", "source"}:
        # The API refuses an image whose base64 or signature is wrong, which would end
        # the reply: checked here as a request's images are.
        try:
            Attachments(MAX_RESULT_BYTES, citations=False).result_image(block, "result")
        except Refused:
            return False
        return True
    return False
