"""The tool loop: a provider with the operator's tools (docs/protocol.md, "Tools").

Every request is offered every tool. When a reply stops for `tool_use`, the provider ends
it with a `turn` event (the assistant message exactly as the API returned it, thinking
signatures included). If every call is to a tool the server runs, the loop runs them (at
once, each within --tool-timeout), streams each `tool_result`, and continues the reply with
the turn and the results as the next two messages, all in the same stream. If any call is
the client's, the loop runs the server's calls of that turn, then passes the `turn` on
(with the server's results in `tool_results`) and the reply ends with `stop_reason:
"tool_use"`: the client continues with a new request.

A reply's `max_tokens` bounds the whole reply, however many requests it takes: each one
asks for what is left. Each request runs in the code execution container the reply's code
ran in, and the reader gets one `container` event, at the end. `--max-tool-steps` bounds
the requests. Usage sums them all. The loop runs inside the generation's task, so whatever
cancels the generation (Stop, DELETE, the resume window, shutdown) cancels a running handler
and the upstream request too; the generation runs once per reply, whoever reads it, so a
handler runs once per call.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from ..config import Settings, resolved_provider
from ..providers.base import (
    Block,
    ChatMessage,
    Event,
    GenerationRequest,
    Item,
    Provider,
    Usage,
    bounds_left,
)
from .definitions import Handler, ToolSpec, handlers
from .demo import DEMO_TOOLS
from .handlers import DENIED, ToolCall, ToolOutcome, run_calls

log = logging.getLogger("sseserver.tools")


class ToolLoop:
    def __init__(
        self, inner: Provider, specs: tuple[ToolSpec, ...], *, timeout: float, max_steps: int,
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._definitions = tuple(spec.definition for spec in specs)
        self._handlers: Mapping[str, Handler] = handlers(specs)
        self._approval = frozenset(spec.name for spec in specs if spec.needs_approval)
        self._timeout = timeout
        self._max_steps = max_steps

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Item, None]:
        messages = list(request.messages)
        if _approvals(messages[-1]):
            # The user's decisions on the calls that needed them: run what was approved.
            outcomes = await self._decide(messages[-2], messages[-1])
            for outcome in outcomes:
                yield Event("tool_result", outcome.event())
            messages[-1] = _answered(messages[-1], outcomes)
        request = dataclasses.replace(request, tools=self._definitions, messages=tuple(messages))
        spent = Usage(0, 0, None)  # the reply's finished requests
        step_request = request
        # The code execution container the reply's code ran in: each step runs in it, and
        # the reader hears of it once, before the reply's usage.
        container: Event | None = None
        for step in range(1, self._max_steps + 1):
            turn: dict[str, Any] | None = None
            last: Usage | None = None
            items = self._inner.stream(step_request)
            try:
                async for item in items:
                    if isinstance(item, Usage):
                        last = item
                        yield spent.plus(item)
                    elif isinstance(item, Event) and item.name == "turn":
                        turn = item.data  # type: ignore[assignment]
                    elif isinstance(item, Event) and item.name == "container":
                        container = item
                    else:
                        yield item
            finally:
                await items.aclose()
            if turn is None or last is None or last.stop_reason != "tool_use":
                break
            content: list[Block] = turn["content"]
            calls = _calls(content)
            server = [c for c in calls if c.name in self._handlers and c.name not in self._approval]
            client_side = len(server) < len(calls)
            spent = spent.plus(last)
            bounds = bounds_left(request, spent.output_tokens)
            if not client_side and (step == self._max_steps or bounds is None):
                log.info("reply stopped at its tool call: %s", "no tokens left"
                         if bounds is None else f"{self._max_steps} requests made")
                break
            outcomes = await run_calls(server, dict(self._handlers), self._timeout)
            for outcome in outcomes:
                yield Event("tool_result", outcome.event())
            if client_side or bounds is None:
                waiting = [c.id for c in calls if c.name in self._approval]
                yield Event("turn", _client_turn(content, outcomes, waiting))
                break
            messages += [
                ChatMessage("assistant", tuple(content)),
                ChatMessage("user", tuple(outcome.block() for outcome in outcomes)),
            ]
            max_tokens, thinking = bounds
            step_request = dataclasses.replace(
                request, messages=tuple(messages), max_tokens=max_tokens, thinking=thinking,
                container=_container_id(container) or request.container,
            )
        if container is not None:
            yield container

    async def _decide(self, turn: ChatMessage, answer: ChatMessage) -> list[ToolOutcome]:
        """A `tool_approval` block per call that needed one (validation.py checked them):
        an approved call is run, a denied one answered as denied."""
        calls = {call.id: call for call in _calls(_blocks(turn))}
        approved: list[ToolCall] = []
        denied: dict[str, ToolOutcome] = {}
        for block in _approvals(answer):
            call = calls[block["tool_use_id"]]
            if block["approved"]:
                approved.append(call)
            else:
                reason = block.get("reason")
                denied[call.id] = ToolOutcome(
                    call, DENIED + (f" Reason: {reason}" if reason else ""), is_error=True,
                )
        ran = await run_calls(approved, dict(self._handlers), self._timeout)
        outcomes = {outcome.call.id: outcome for outcome in ran} | denied
        return [outcomes[block["tool_use_id"]] for block in _approvals(answer)]

    async def close(self) -> None:
        await self._inner.close()


def _container_id(container: Event | None) -> str | None:
    data = container.data if container is not None else None
    return str(data["id"]) if isinstance(data, dict) else None


def _blocks(message: ChatMessage) -> list[Block]:
    return [] if isinstance(message.content, str) else list(message.content)


def _approvals(message: ChatMessage) -> list[Block]:
    return [block for block in _blocks(message) if block["type"] == "tool_approval"]


def _answered(message: ChatMessage, outcomes: list[ToolOutcome]) -> ChatMessage:
    """The message with each `tool_approval` replaced by its call's `tool_result`."""
    results = {outcome.call.id: outcome.block() for outcome in outcomes}
    return ChatMessage(message.role, tuple(
        results[b["tool_use_id"]] if b["type"] == "tool_approval" else b
        for b in _blocks(message)
    ))


def _calls(content: list[Block]) -> list[ToolCall]:
    return [
        ToolCall(str(block["id"]), str(block["name"]), dict(block.get("input") or {}))
        for block in content if block.get("type") == "tool_use"
    ]


def _client_turn(
    content: list[Block], outcomes: list[ToolOutcome], waiting: list[str]
) -> dict[str, Any]:
    """The `turn` event's data: the message to send back, the results of the server's calls
    in it, which the client's next message carries with its own, and the calls that wait
    for the user's approval."""
    data: dict[str, Any] = {"role": "assistant", "content": content}
    if outcomes:
        data["tool_results"] = [outcome.block() for outcome in outcomes]
    if waiting:
        data["needs_approval"] = waiting
    return data


def offered_tools(settings: Settings) -> tuple[ToolSpec, ...]:
    """--tools; without it, the demo's two examples when the demo provider writes ordinary
    replies (not `--demo-tokens` load, whose replies stay exactly N messages)."""
    if settings.tools:
        return settings.tools
    if resolved_provider(settings) == "demo" and settings.demo_tokens is None:
        return DEMO_TOOLS
    return ()


def with_tools(provider: Provider, settings: Settings) -> Provider:
    """The provider inside the tool loop when there are tools to offer; else as it is, so
    a reply without tools costs what it always has."""
    specs = offered_tools(settings)
    if not specs:
        return provider
    return ToolLoop(provider, specs, timeout=settings.tool_timeout,
                    max_steps=settings.max_tool_steps)
