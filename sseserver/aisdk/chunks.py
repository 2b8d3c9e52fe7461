"""Our stored frames as the AI SDK's UI message stream: one `UIChunks` per response,
fed a stream's frames from its first, in order (docs/protocol.md, "The AI SDK's chat route").

The store keeps only our own frames; each chat response maps them on its way out. A text
or thinking delta costs no JSON work: its `data` is already a JSON string, and is spliced
into the chunk as it is. Part ids come from the index of the frame that opened the part, so
replaying a stream gives the same chunks with the same ids, which is what lets the client
rebuild its message from a replay (`resumeStreamIsReplay`) without a duplicated part.

    meta ─▶ start {messageId}, start-step
    thinking ─▶ reasoning-start / -delta        thinking_hidden ─▶ an empty reasoning part
    message ─▶ text-start / text-delta          citation ─▶ source-url or source-document
    tool_start ─▶ tool-input-start              (sources.py); the text part's text-end
    tool_input ─▶ tool-input-delta                                carries its citations
    tool ─▶ tool-input-available (Claude's server tools and MCP calls: server_tools.py)
    tool_result ─▶ tool-output-available, tool-output-error or tool-output-denied (a web
                   fetch also a source-url); the next content after the results of the
                   server's own tools opens a new step
    compaction ─▶ data-compaction               block ─▶ data-unsupported
    file ─▶ data-file                           container ─▶ the finish's messageMetadata
    turn ─▶ reasoning-end with the signatures, tool-approval-request per waiting call
    usage ─▶ (ends of open parts) finish-step, then finish {finishReason} or abort
    done ─▶ [DONE]                              error ─▶ error {errorText}, [DONE]

Thinking signatures never travel in `thinking` events; a `turn` carries them, at the end
of the step. So when the offered tools can end a reply with a turn (a client-run tool, or
one that needs approval), a reasoning part's `reasoning-end` waits for the end of its step,
where the turn's signature (or redacted data) goes into its `providerMetadata`, as
@ai-sdk/anthropic puts it; the text and tools after it stream meanwhile. Without such
tools nothing would come back, and the part ends as soon as the next part begins.

Any other event is skipped, as an AI SDK client would skip a chunk it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..tools.definitions import SERVER_TOOL_NAMES, ToolSpec
from ..tools.handlers import DENIED
from .encoding import DONE, chunk
from .server_tools import call_chunk, is_claude_s, output_chunk
from .sources import Sources

__all__ = ["CUT_SHORT", "DONE", "LOST", "NO_TOOLS", "ToolRoles", "UIChunks", "chunk"]

# Claude's stop reasons as the AI SDK's finish reasons, as @ai-sdk/anthropic maps them
# (its map-anthropic-stop-reason.ts); anything else is "other".
FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "refusal": "content-filter",
    "tool_use": "tool-calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "compaction": "other",
}
CUT_SHORT: Final = "The reply ended before it finished; ask again."
LOST: Final = "The server generating this reply stopped before it finished; ask again."


@dataclass(frozen=True, slots=True)
class ToolRoles:
    """What the chunks need to know of the offered tools (docs/protocol.md, "Tools")."""

    server: frozenset[str] = frozenset()  # run by the server (some once approved)
    turns: bool = False  # a reply may end with a turn the client answers

    @classmethod
    def of(cls, specs: Iterable[ToolSpec]) -> ToolRoles:
        specs = tuple(specs)
        return cls(
            server=frozenset(spec.name for spec in specs if spec.handler is not None),
            turns=any(spec.handler is None or spec.needs_approval for spec in specs),
        )


NO_TOOLS: Final = ToolRoles()


class UIChunks:
    """The UI message stream of one stream, for one response.

    `message_id` is the assistant message's id in the `start` chunk: the stream's id, or,
    for a reply that continues the client's last assistant message (after its tool
    outputs or approvals), that message's id, as the AI SDK's own servers continue it.
    `continuing` then also lets through the results of calls made in that message."""

    __slots__ = ("_container", "_continuing", "_held", "_hiding", "_index", "_kind", "_open",
                 "_over", "_roles", "_sources", "_started", "_stepped", "_tools", "finished",
                 "message_id")

    def __init__(self, message_id: str, roles: ToolRoles = NO_TOOLS, *,
                 continuing: bool = False) -> None:
        self.message_id = message_id
        self.finished = False  # [DONE] was written
        self._roles = roles
        self._continuing = continuing
        self._index = 0  # of the next stored frame
        self._started = False
        self._open = b""  # the open text or reasoning part's id, if any
        self._kind = b""  # b"text" or b"reasoning"
        self._hiding: str | None = None  # why the open reasoning part is empty, if it is
        self._held: list[tuple[str, str | None]] = []  # reasoning parts whose end waits
        self._stepped = False  # the step has content
        self._over = False  # the step ended with server-run tools' results
        self._sources = Sources()  # given, and the open text part's citations
        self._tools: dict[str, str] = {}  # tool calls seen: id -> name
        self._container: dict[str, Any] | None = None  # the reply's code execution container

    def frame(self, frame: bytes, out: list[bytes]) -> None:
        """Append to `out` the chunks of the next stored frame."""
        index = self._index
        self._index += 1
        parts = frame.split(b"\n", 3)
        if len(parts) < 3 or not parts[1].startswith(b"event: "):
            return
        event, data = parts[1][7:], parts[2][6:]
        if event == b"message":
            if self._kind != b"text" or self._sources.pending:
                self._open_part(b"text", b"t%d" % index, out)
            out.append(b'data: {"type":"text-delta","id":"%b","delta":%b}\n\n'
                       % (self._open, data))
        elif event == b"thinking":
            if self._kind != b"reasoning":
                self._open_part(b"reasoning", b"r%d" % index, out)
            out.append(b'data: {"type":"reasoning-delta","id":"%b","delta":%b}\n\n'
                       % (self._open, data))
        elif event == b"done":
            self._end(out)
        else:
            self._event(event.decode(), json.loads(data), index, out)

    def _event(self, event: str, data: Any, index: int, out: list[bytes]) -> None:
        if event == "meta":
            self._start(out)
        elif event == "citation":
            self._sources.citation(data, self._kind == b"text", out)
        elif event == "thinking_hidden":
            self._open_part(b"reasoning", b"r%d" % index, out, hidden=data.get("reason"))
            self._close(out)
        elif event == "tool_start":
            self._content(out)
            self._tools[data["id"]] = data["name"]
            start: dict[str, Any] = {"type": "tool-input-start", "toolCallId": data["id"],
                                     "toolName": data["name"]}
            out.append(chunk(start | self._executed(data["name"])))
        elif event == "tool_input":
            if data["id"] in self._tools:
                out.append(chunk({"type": "tool-input-delta", "toolCallId": data["id"],
                                  "inputTextDelta": data["delta"]}))
        elif event == "tool":
            self._content(out)
            self._tools[data["id"]] = data["name"]
            if is_claude_s(data):
                out.append(chunk(call_chunk(data)))
                return
            available = {"type": "tool-input-available", "toolCallId": data["id"],
                         "toolName": data["name"], "input": data["input"]}
            out.append(chunk(available | self._executed(data["name"])))
        elif event == "tool_result":
            self._tool_result(data, out)
        elif event == "turn":
            self._turn(data, out)
        elif event == "usage":
            self._usage(data, out)
        elif event == "error":
            self.fail(str(data.get("message", "")) or CUT_SHORT, out)
        else:
            self._data_part(event, data, index, out)

    def _data_part(self, event: str, data: Any, index: int, out: list[bytes]) -> None:
        """The blocks the AI SDK has no part for, as data parts (ids from the event's
        index, as every part's), and the container the finish's metadata carries."""
        if event == "compaction":
            self._content(out)
            out.append(chunk({"type": "data-compaction", "id": f"c{index}", "data": {
                "content": data.get("content"), "block": data.get("block")}}))
        elif event == "file":
            self._content(out)
            out.append(chunk({"type": "data-file", "id": f"f{index}",
                              "data": {"fileId": data.get("file_id")}}))
        elif event == "block":
            if data.get("kind") == "block":  # a whole block; a delta's part stays open
                self._content(out)
            self._start(out)
            out.append(chunk({"type": "data-unsupported", "id": f"u{index}", "data": {
                "kind": data.get("kind"), "type": data.get("type"), "data": data.get("data")}}))
        elif event == "container" and isinstance(data.get("id"), str):
            self._container = {"id": data["id"], "expiresAt": data.get("expires_at")}

    def _usage(self, data: dict[str, Any], out: list[bytes]) -> None:
        """The reply's end: its step's, then the message's, with the reply's container as
        the message's metadata (the AI SDK's only place for what a later request needs)."""
        self._finish_step(out)
        reason = data.get("stop_reason")
        if reason == "cancelled":
            out.append(chunk({"type": "abort", "reason": "cancelled"}))
            return
        finish: dict[str, Any] = {"type": "finish",
                                  "finishReason": FINISH_REASONS.get(str(reason), "other")}
        if self._container is not None:
            finish["messageMetadata"] = {"container": self._container}
        out.append(chunk(finish))

    def fail(self, message: str, out: list[bytes]) -> None:
        """End with an error chunk (the stream was lost, or ended in an error event)."""
        self._close(out)
        self._release(out)
        self._start(out)  # a replay must begin with its start, even one with nothing else
        out.append(chunk({"type": "error", "errorText": message}))
        self._end(out)

    def cut_short(self, out: list[bytes]) -> None:
        """The stored stream has ended: when it ended without its own last event (its
        generation stopped on a store failure), say so, so the client does not wait."""
        if not self.finished:
            self.fail(CUT_SHORT, out)

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            out.append(chunk({"type": "start", "messageId": self.message_id}))
            out.append(chunk({"type": "start-step"}))

    def _end(self, out: list[bytes]) -> None:
        if not self.finished:
            self.finished = True
            out.append(DONE)

    def _executed(self, name: str) -> dict[str, Any]:
        """Claude's server tools and the server's own tools run on the server: the client's
        `onToolCall` is not called for them, nor does the client wait on them."""
        if name in SERVER_TOOL_NAMES or name in self._roles.server:
            return {"providerExecuted": True}
        return {}

    def _content(self, out: list[bytes]) -> None:
        """Before a part of the reply: after server-run tools' results, the continuation
        is the message's next step, as the AI SDK's own multi-step streams are."""
        self._close(out)
        self._start(out)
        if self._over:
            self._over = False
            self._finish_step(out)
            out.append(chunk({"type": "start-step"}))
        self._stepped = True

    def _finish_step(self, out: list[bytes]) -> None:
        self._close(out)
        self._release(out)
        self._stepped = False
        out.append(chunk({"type": "finish-step"}))

    def _open_part(self, kind: bytes, part_id: bytes, out: list[bytes],
                   hidden: str | None = None) -> None:
        self._content(out)
        self._open, self._kind, self._hiding = part_id, kind, hidden
        start: dict[str, Any] = {"type": f"{kind.decode()}-start", "id": part_id.decode()}
        if hidden is not None:  # thinking Claude did not show: an empty, marked part
            start["providerMetadata"] = {"sseserver": {"thinkingHidden": hidden}}
        out.append(chunk(start))

    def _close(self, out: list[bytes]) -> None:
        if not self._open:
            return
        part_id, kind, hidden = self._open.decode(), self._kind, self._hiding
        self._open, self._kind, self._hiding = b"", b"", None
        if kind == b"reasoning":
            if self._roles.turns:  # its end waits for the turn's signature
                self._held.append((part_id, hidden))
            else:
                out.append(chunk(_reasoning_end(part_id, hidden, None)))
            return
        end: dict[str, Any] = {"type": "text-end", "id": part_id}
        if self._sources.pending:
            end["citations"] = self._sources.take()
        out.append(chunk(end))

    def _release(self, out: list[bytes], blocks: list[dict[str, Any]] | None = None) -> None:
        """End the held reasoning parts; with the turn's thinking blocks, one per part in
        order, each part's end carries its block's signature or redacted data. Parts and
        blocks that do not pair up one to one carry nothing rather than a wrong one."""
        held, self._held = self._held, []
        if blocks is not None and len(blocks) != len(held):
            blocks = None
        for number, (part_id, hidden) in enumerate(held):
            block = blocks[number] if blocks is not None else None
            out.append(chunk(_reasoning_end(part_id, hidden, block)))

    def _turn(self, data: dict[str, Any], out: list[bytes]) -> None:
        """The reply stops for the client: the held reasoning parts end with their
        signatures, and each call that waits for the user's approval asks for it."""
        self._close(out)
        content = data.get("content") or []
        self._release(out, [b for b in content if isinstance(b, dict) and b.get("type") in (
            "thinking", "redacted_thinking")])
        for call in data.get("needs_approval") or []:
            if call in self._tools:
                out.append(chunk({"type": "tool-approval-request", "approvalId": call,
                                  "toolCallId": call}))

    def _tool_result(self, data: dict[str, Any], out: list[bytes]) -> None:
        call = data.get("tool_use_id")
        if not isinstance(call, str):
            return
        if not is_claude_s(data):
            if "content" in data:
                self._server_result(call, data, out)
            return
        if call not in self._tools:
            return  # the client has no tool part to put it in
        # The output fills the call's part where it is: a result that waited (for its
        # files' names) while text went on leaves that text's part open.
        self._start(out)
        out.append(chunk(output_chunk(data)))
        if data.get("name") == "web_fetch" and "error" not in data:
            self._sources.page(data.get("url"), data.get("title"), out)

    def _server_result(self, call: str, data: dict[str, Any], out: list[bytes]) -> None:
        """A server-run tool's result: of a call of this stream, or, first in a reply that
        continues the client's message, of a call the user approved or denied there."""
        if call not in self._tools and not self._continuing:
            return
        self._close(out)
        content = data["content"]
        if data.get("is_error") and isinstance(content, str) and content.startswith(DENIED):
            out.append(chunk({"type": "tool-output-denied", "toolCallId": call}))
        elif data.get("is_error"):
            out.append(chunk({"type": "tool-output-error", "toolCallId": call,
                              "errorText": _text_of(content), "providerExecuted": True}))
        else:
            out.append(chunk({"type": "tool-output-available", "toolCallId": call,
                              "output": content, "providerExecuted": True}))
        if self._stepped:  # what follows is the continuation: the next step
            self._over = True


def _reasoning_end(part_id: str, hidden: str | None,
                   block: dict[str, Any] | None) -> dict[str, Any]:
    """A reasoning part's end, with the turn's signature or redacted data under the names
    @ai-sdk/anthropic gives them. The end's metadata replaces the start's, so an empty
    part's hidden reason is repeated beside them."""
    end: dict[str, Any] = {"type": "reasoning-end", "id": part_id}
    if block is None:
        return end
    if isinstance(block.get("signature"), str):
        metadata: dict[str, Any] = {"anthropic": {"signature": block["signature"]}}
    elif isinstance(block.get("data"), str):
        metadata = {"anthropic": {"redactedData": block["data"]}}
    else:
        return end
    if hidden is not None:
        metadata["sseserver"] = {"thinkingHidden": hidden}
    end["providerMetadata"] = metadata
    return end


def _text_of(content: object) -> str:
    """A tool result's content as the text of an error."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b["text"] for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""
