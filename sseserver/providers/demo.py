"""Offline provider: a deterministic reply with token-like pacing, so the service works
(and can be load-tested) without an API key or a network.

A reply shows every kind of event a real one can: a short thinking block (unless the
request turned thinking off), a pretend web search (when the request asked for one), and
text with one cited source. Offered tools, it calls them as demo_tools.py says. With
`--demo-tokens N` (load tests) a reply is exactly N `message` events and nothing else, so
load figures stay comparable.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator
from typing import Any, Final

from .base import Event, GenerationRequest, Item, Usage
from .demo_files import demo_file_items
from .demo_tools import demo_tool_items

DEMO_TEXT = (
    "This reply comes from sseserver's built-in demo provider, so no API key was used "
    "and no tokens were billed. It streams word by word, the way Claude does, so you can "
    "watch Server-Sent Events at work:\n\n"
    "1. Every piece of text is one `message` event with its own id.\n"
    "2. If your connection drops, the browser reconnects with `Last-Event-ID` and the "
    "server replays exactly what you missed.\n"
    "3. Press Stop and the generation is cancelled at once.\n\n"
    "To talk to Claude for real, start the server with ANTHROPIC_API_KEY set. "
    'You asked: "{question}"'
)

# Thinking, in pieces as Claude streams it.
DEMO_THINKING: Final = (
    "The reader wants to see", " what streams over the wire.", " I'll think briefly,",
    " look up the standard if I may,", " then answer and cite it.",
)
# The sentence of DEMO_TEXT the citation supports: its event comes after its last token.
_CITED: Final = "so you can watch Server-Sent Events at work:"
_CITED_END: Final = DEMO_TEXT.index(_CITED) + len(_CITED)
_SOURCE_URL: Final = "https://html.spec.whatwg.org/multipage/server-sent-events.html"
_SOURCE_TITLE: Final = "HTML Standard: Server-sent events"
DEMO_CITATION: Final[dict[str, Any]] = {
    "url": _SOURCE_URL,
    "title": _SOURCE_TITLE,
    "cited_text": "To enable servers to push data to web pages over HTTP or using dedicated "
                  "server-push protocols, this specification introduces the EventSource "
                  "interface.",
}
DEMO_SEARCH: Final[tuple[Event, Event]] = (
    Event("tool", {"id": "srvtoolu_demo", "name": "web_search",
                   "input": {"query": "Server-Sent Events standard"}}),
    Event("tool_result", {"tool_use_id": "srvtoolu_demo", "name": "web_search",
                          "results": [{"title": _SOURCE_TITLE, "url": _SOURCE_URL,
                                       "page_age": None}]}),
)

# A token is a run of non-space characters with the whitespace before it, like BPE pieces.
_TOKEN = re.compile(r"\s*\S+|\s+$")
_QUESTION_CHARS = 200


@functools.lru_cache(maxsize=256)
def demo_tokens(question: str) -> tuple[str, ...]:
    """The demo reply for a question, cut into tokens that join back to the exact text.
    Cached: a load test asks the same question thousands of times, and every generation
    then shares one tuple instead of holding ~100 strings of its own."""
    excerpt = " ".join(question.split())
    if len(excerpt) > _QUESTION_CHARS:
        excerpt = excerpt[:_QUESTION_CHARS] + "…"
    return tuple(_TOKEN.findall(DEMO_TEXT.format(question=excerpt)))


class DemoProvider:
    name = "demo"

    def __init__(self, delay_ms: int = 30, tokens: int | None = None) -> None:
        self._delay = delay_ms / 1000
        self._tokens = tokens

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Item, None]:
        question = request.messages[-1].text
        tokens = demo_tokens(question)
        prompt_words = sum(len(m.text.split()) for m in request.messages)
        yield Usage(input_tokens=prompt_words, output_tokens=0, stop_reason=None)
        tool_turn = demo_tool_items(request) if self._tokens is None else None
        if tool_turn is None and self._tokens is None:
            tool_turn = demo_file_items(request)  # an answer naming the attachments
        if tool_turn is not None:  # a tool's call or result, or attachments
            written = 0
            for item in tool_turn:
                await asyncio.sleep(self._delay)
                written += isinstance(item, str)
                yield item
                if isinstance(item, Usage):
                    return
            yield Usage(prompt_words, written, "end_turn")
            return
        if self._tokens is not None:  # a load test: N messages, nothing else
            for index in range(self._tokens):
                # sleep(0) still yields, so a zero-delay demo never starves other streams.
                await asyncio.sleep(self._delay)
                yield tokens[index % len(tokens)]  # past the text's end it starts again
            yield Usage(prompt_words, self._tokens, "end_turn")
            return
        thinking = 0 if request.thinking == "off" else len(DEMO_THINKING)
        for piece in DEMO_THINKING[:thinking]:
            await asyncio.sleep(self._delay)
            yield Event("thinking", piece)
        searches = 1 if request.web_search else 0
        for event in DEMO_SEARCH[: 2 * searches]:
            await asyncio.sleep(self._delay)
            yield event
        count = min(len(tokens), request.max_tokens)
        written = 0
        for token in tokens[:count]:
            await asyncio.sleep(self._delay)
            yield token
            written += len(token)
            if written >= _CITED_END and written - len(token) < _CITED_END:
                yield Event("citation", DEMO_CITATION)  # the cited sentence just ended
        yield Usage(
            prompt_words, count + thinking, "max_tokens" if count < len(tokens) else "end_turn",
            thinking_tokens=thinking, web_search_requests=searches,
        )

    async def close(self) -> None:
        return None
