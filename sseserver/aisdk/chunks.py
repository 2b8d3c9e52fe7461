"""Our stored frames as the AI SDK's UI message stream: one `UIChunks` per response,
fed a stream's frames from its first, in order (docs/protocol.md, "The AI SDK's chat route").

The store keeps only our own frames; each chat response maps them on its way out. A text
or thinking delta costs no JSON work: its `data` is already a JSON string, and is spliced
into the chunk as it is. Part ids come from the index of the frame that opened the part, so
replaying a stream gives the same chunks with the same ids, which is what lets the client
rebuild its message from a replay (`resumeStreamIsReplay`) without a duplicated part.

    meta ─▶ start {messageId: stream id}, start-step
    thinking ─▶ reasoning-start / -delta        thinking_hidden ─▶ an empty reasoning part
    message ─▶ text-start / text-delta          citation ─▶ source-url (a document's:
    tool ─▶ tool-input-available                source-document); the text part's text-end
                                                            carries its citations
    tool_result ─▶ tool-output-available or tool-output-error
    usage ─▶ (ends of open parts) finish-step, then finish {finishReason} or abort
    done ─▶ [DONE]                              error ─▶ error {errorText}, [DONE]

Any other event is skipped, as an AI SDK client would skip a chunk it does not know.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..sse import to_json

DONE: Final = b"data: [DONE]\n\n"

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
}
# A document citation's type says what the document was: a PDF is cited by page, a text
# document by character, a document of content blocks by block (as text).
DOCUMENT_TYPES: Final = {
    "page_location": "application/pdf",
    "char_location": "text/plain",
    "content_block_location": "text/plain",
}
CUT_SHORT: Final = "The reply ended before it finished; ask again."
LOST: Final = "The server generating this reply stopped before it finished; ask again."


def chunk(value: dict[str, Any]) -> bytes:
    """One chunk as its SSE frame. A lone surrogate (which has no UTF-8) goes as an escape."""
    text = to_json(value)
    try:
        return b"data: %b\n\n" % text.encode()
    except UnicodeEncodeError:
        return b"data: %b\n\n" % json.dumps(value, separators=(",", ":")).encode()


class UIChunks:
    """The UI message stream of one stream, for one response."""

    __slots__ = ("_citations", "_index", "_kind", "_open", "_sources", "_started", "_tools",
                 "finished", "message_id")

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.finished = False  # [DONE] was written
        self._index = 0  # of the next stored frame
        self._started = False
        self._open = b""  # the open text or reasoning part's id, if any
        self._kind = b""  # b"text" or b"reasoning"
        self._citations: list[dict[str, Any]] = []  # of the open text part
        self._sources: set[str] = set()  # URLs given a source-url part
        self._tools: set[str] = set()  # tool calls seen, which results may name

    def frame(self, frame: bytes, out: list[bytes]) -> None:
        """Append to `out` the chunks of the next stored frame."""
        index = self._index
        self._index += 1
        parts = frame.split(b"\n", 3)
        if len(parts) < 3 or not parts[1].startswith(b"event: "):
            return
        event, data = parts[1][7:], parts[2][6:]
        if event == b"message":
            if self._kind != b"text" or self._citations:
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
            self._citation(data, out)
        elif event == "thinking_hidden":
            self._open_part(b"reasoning", b"r%d" % index, out, hidden=data.get("reason"))
            self._close(out)
        elif event == "tool":
            self._close(out)
            self._tools.add(data["id"])
            out.append(chunk({"type": "tool-input-available", "toolCallId": data["id"],
                              "toolName": data["name"], "input": data["input"],
                              "providerExecuted": True}))
        elif event == "tool_result":
            self._tool_result(data, out)
        elif event == "usage":
            self._close(out)
            out.append(chunk({"type": "finish-step"}))
            reason = data.get("stop_reason")
            if reason == "cancelled":
                out.append(chunk({"type": "abort", "reason": "cancelled"}))
            else:
                out.append(chunk({"type": "finish",
                                  "finishReason": FINISH_REASONS.get(reason, "other")}))
        elif event == "error":
            self.fail(str(data.get("message", "")) or CUT_SHORT, out)

    def fail(self, message: str, out: list[bytes]) -> None:
        """End with an error chunk (the stream was lost, or ended in an error event)."""
        self._close(out)
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

    def _open_part(self, kind: bytes, part_id: bytes, out: list[bytes],
                   hidden: str | None = None) -> None:
        self._close(out)
        self._start(out)
        self._open, self._kind = part_id, kind
        start: dict[str, Any] = {"type": f"{kind.decode()}-start", "id": part_id.decode()}
        if hidden is not None:  # thinking Claude did not show: an empty, marked part
            start["providerMetadata"] = {"sseserver": {"thinkingHidden": hidden}}
        out.append(chunk(start))

    def _close(self, out: list[bytes]) -> None:
        if not self._open:
            return
        end: dict[str, Any] = {"type": f"{self._kind.decode()}-end", "id": self._open.decode()}
        if self._citations:
            end["citations"] = self._citations
            self._citations = []
        out.append(chunk(end))
        self._open, self._kind = b"", b""

    def _citation(self, data: dict[str, Any], out: list[bytes]) -> None:
        """A citation of the text part just written (it arrives after that part's last
        delta); a document's becomes a source-document, one without either is skipped."""
        url = data.get("url")
        if data.get("type") in DOCUMENT_TYPES:
            self._document_citation(data, out)
            return
        if not isinstance(url, str):
            return
        source: dict[str, Any] = {"type": "source", "sourceType": "url", "id": url, "url": url}
        if data.get("title") is not None:
            source["title"] = data["title"]
        if url not in self._sources:
            self._sources.add(url)
            part = {"type": "source-url", "sourceId": url, "url": url}
            out.append(chunk(part | ({"title": source["title"]} if "title" in source else {})))
        if self._kind == b"text":
            self._citations.append({"source": source, "citedText": data.get("cited_text", "")})

    def _document_citation(self, data: dict[str, Any], out: list[bytes]) -> None:
        """A document's citation: a source-document part once per document (its id from
        the document's index, so a replay gives the same), and on the text-end the cited
        text, with its character range for a text document."""
        index = data.get("document_index")
        source_id = f"doc-{index}"
        title = data.get("title") or f"Document {index + 1 if isinstance(index, int) else ''}"
        source: dict[str, Any] = {"type": "source", "sourceType": "document", "id": source_id,
                                  "mediaType": DOCUMENT_TYPES[data["type"]],
                                  "title": str(title).strip()}
        if source_id not in self._sources:
            self._sources.add(source_id)
            out.append(chunk({"type": "source-document", "sourceId": source_id,
                              "mediaType": source["mediaType"], "title": source["title"]}))
        if self._kind == b"text":
            cited: dict[str, Any] = {"source": source, "citedText": data.get("cited_text", "")}
            start, end = data.get("start_char_index"), data.get("end_char_index")
            if data["type"] == "char_location" and isinstance(start, int) and isinstance(
                end, int
            ):
                cited |= {"startIndex": start, "endIndex": end}
            self._citations.append(cited)

    def _tool_result(self, data: dict[str, Any], out: list[bytes]) -> None:
        call = data.get("tool_use_id")
        if call not in self._tools:
            return  # the client has no tool part to put it in
        self._close(out)
        if "error" in data:
            code = (data["error"] or {}).get("code") or "error"
            out.append(chunk({"type": "tool-output-error", "toolCallId": call,
                              "errorText": str(code), "providerExecuted": True}))
            return
        # The shape @ai-sdk/anthropic gives web search results, less their encrypted content.
        results = [{"type": "web_search_result", "url": r.get("url"), "title": r.get("title"),
                    "pageAge": r.get("page_age")} for r in data.get("results") or []]
        out.append(chunk({"type": "tool-output-available", "toolCallId": call,
                          "output": results, "providerExecuted": True}))
