"""Offline provider: deterministic replies with token-like pacing, so the service works
(and can be load-tested) without an API key or a network.

A reply shows every kind of event a real one can: a short thinking block (unless the
request turned thinking off), a pretend web search (when the request asked for one), and
text with one cited source. The question picks the reply by its words (`demo_reply`), so
a newcomer sees what the page renders: code with Copy, a table, a list, a long answer,
longer thinking, a search with citations; anything else gets the reply that explains the
demo. Offered tools, it calls them as demo_tools.py says. With `--demo-tokens N` (load
tests) a reply is exactly N `message` events of that explaining text, whatever the
question, so load figures stay comparable.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
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

_MDN_URL: Final = "https://developer.mozilla.org/en-US/docs/Web/API/EventSource"
_MDN_CITATION: Final[dict[str, Any]] = {
    "url": _MDN_URL,
    "title": "EventSource - Web APIs | MDN",
    "cited_text": "The EventSource interface is web content's interface to server-sent events.",
}
_TAIL: Final = (
    "\n\n*A canned demo reply. Ask for code, a table, a list, a long answer, thinking or "
    "a search to see the others.*"
)

# The replies a question can pick, each with the words that pick it (whole words, any
# case), in order: the first match wins. Each holds the sentence its citation supports.
_CODE: Final = (
    "Here is a small Python client that reads this server's stream with only the "
    "standard library:\n\n"
    "```python\n"
    "import json\n"
    "import urllib.request\n\n"
    "url = \"http://127.0.0.1:8080/api/sse?message=Hello\"\n"
    "with urllib.request.urlopen(url) as response:\n"
    "    event = \"message\"\n"
    "    for raw in response:\n"
    "        line = raw.decode().rstrip(\"\\n\")\n"
    "        if line.startswith(\"event: \"):\n"
    "            event = line[7:]\n"
    "        elif line.startswith(\"data: \") and event == \"message\":\n"
    "            print(json.loads(line[6:]), end=\"\", flush=True)\n"
    "        elif line == \"\":\n"
    "            event = \"message\"\n"
    "```\n\n"
    "And the same in the browser, where `EventSource` does the parsing:\n\n"
    "```js\n"
    "const source = new EventSource(\"/api/sse?message=Hello\");\n"
    "source.onmessage = (e) => output.append(JSON.parse(e.data));\n"
    "source.addEventListener(\"done\", () => source.close());\n"
    "```\n\n"
    "Each `message` event's data is a JSON string, so `json.loads` gives the exact text."
)
_TABLE: Final = (
    "Three ways to push text from a server to a browser:\n\n"
    "| | Server-Sent Events | WebSocket | Long polling |\n"
    "|---|---|---|---|\n"
    "| Direction | server → client | both ways | server → client |\n"
    "| Protocol | plain HTTP | its own, after an upgrade | plain HTTP |\n"
    "| Reconnects | built in, with `Last-Event-ID` | by hand | a new request each time |\n"
    "| Proxies and HTTP/2 | work unchanged | need support | work |\n"
    "| Browser API | `EventSource` | `WebSocket` | `fetch` |\n\n"
    "For a reply that streams one way, SSE is the simplest that resumes by itself."
)
_LIST: Final = (
    "Steps to chat with Claude instead of this demo:\n\n"
    "1. Get an API key from the Anthropic Console.\n"
    "2. Stop this server (Ctrl+C).\n"
    "3. Start it again with the key: `ANTHROPIC_API_KEY=sk-ant-... make run`.\n"
    "4. Open http://127.0.0.1:8080 and ask anything.\n"
    "5. Open Options for thinking and, with `--web-search N`, web search.\n\n"
    "Before exposing the port beyond this machine:\n\n"
    "- set an access token with `--access-token-file`;\n"
    "- put it behind a TLS proxy (`deploy/nginx.conf`);\n"
    "- read `docs/operations.md`, \"Security\"."
)
_LONG: Final = (
    "## How a reply reaches this page\n\n"
    "When you press Enter, the page posts the whole conversation to `/api/streams`. The "
    "server checks it, starts one generation for it, and answers at once with the "
    "stream's id; nothing is asked of the model until the page opens that stream.\n\n"
    "The page then opens an `EventSource` on the stream's URL. The server writes a `meta` "
    "event first, then one `message` event per piece of text, each the moment it "
    "arrives, each with an id made of the stream's id and the event's index. The browser "
    "keeps the last id it saw.\n\n"
    "If the connection drops (a train enters a tunnel, a laptop sleeps), the browser "
    "reconnects by itself and sends that id in `Last-Event-ID`. The server finds the "
    "stream from the id alone, replays exactly the events after it, and carries on live: "
    "no text is lost or repeated, and no second generation starts.\n\n"
    "If nobody comes back within the resume window, the generation is cancelled and its "
    "upstream request closed, so no tokens are spent for a reader who left. Press Stop "
    "and the same happens at once.\n\n"
    "When the reply ends, a `usage` event carries the token counts and the stop reason, "
    "and a `done` event closes it. A reconnect after that gets `204 No Content`, which "
    "tells `EventSource` to stop for good.\n\n"
    "Everything above is the same with Claude, the demo only stands in for the model."
)
_THINKING_ANSWER: Final = (
    "The answer is **9**: all but 9 sheep ran away, so 9 are left. The puzzle counts on "
    "a reader subtracting 9 from 17."
)
_LONG_THINKING: Final = (
    "The question looks like arithmetic,", " but read it again:", " \"all but 9 ran away\"",
    " means 9 did not run away.", " So the count that is left is 9,", " not 17 - 9 = 8.",
    " Check: 17 sheep, 8 ran, 9 stay.", " Answer 9,", " and say why the trap works.",
)
_SEARCH: Final = (
    "Server-Sent Events are part of the HTML Standard, which defines the `text/event-stream` "
    "format and the `EventSource` interface.\n\n"
    "In the browser, EventSource opens one long HTTP response and fires an event for each "
    "block of `data:` lines; it reconnects by itself, sending the last event id it saw.\n\n"
    "Every current browser supports it, and it needs nothing from proxies beyond plain "
    "HTTP."
)


@dataclass(frozen=True, slots=True)
class DemoReply:
    """One canned reply: its tokens, its thinking, and where each citation comes (after
    the token that completes the sentence it supports)."""

    tokens: tuple[str, ...]
    thinking: tuple[str, ...]
    citations: tuple[tuple[int, dict[str, Any]], ...]  # (text length at the end, citation)
    search: bool  # a pretend search comes first when the request allows one


def _cited(text: str, *pairs: tuple[str, dict[str, Any]]) -> tuple[tuple[int, dict[str, Any]], ...]:
    return tuple((text.index(sentence) + len(sentence), citation) for sentence, citation in pairs)


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


_PICKS: Final = (
    ({"code", "python", "javascript", "js", "function", "snippet", "script"}, "code"),
    ({"table", "compare", "comparison", "versus", "vs"}, "table"),
    ({"list", "steps", "checklist"}, "list"),
    ({"long", "essay", "detailed", "article"}, "long"),
    ({"think", "thinking", "puzzle", "riddle", "reason"}, "thinking"),
    ({"search", "sources", "source", "cite", "citations", "latest"}, "search"),
)
_WORD = re.compile(r"[a-z]+")


def pick(question: str) -> str:
    """Which canned reply a question gets: the first kind one of its words names."""
    words = set(_WORD.findall(question.lower()))
    return next((kind for names, kind in _PICKS if words & names), "default")


@functools.lru_cache(maxsize=256)
def demo_reply(question: str) -> DemoReply:
    """The demo's reply to a question (cached, as `demo_tokens`)."""
    kind = pick(question)
    if kind == "default":
        return DemoReply(demo_tokens(question), DEMO_THINKING,
                         ((_CITED_END, DEMO_CITATION),), search=True)
    body = {"code": _CODE, "table": _TABLE, "list": _LIST, "long": _LONG,
            "thinking": _THINKING_ANSWER, "search": _SEARCH}[kind]
    text = body + _TAIL
    citations: tuple[tuple[int, dict[str, Any]], ...] = ()
    if kind == "search":
        citations = _cited(
            text,
            ("the `EventSource` interface.", DEMO_CITATION),
            ("sending the last event id it saw.", _MDN_CITATION),
        )
    thinking = _LONG_THINKING if kind == "thinking" else DEMO_THINKING
    return DemoReply(tuple(_TOKEN.findall(text)), thinking, citations, search=kind == "search")


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
        reply = demo_reply(question)
        tokens = reply.tokens
        thinking = 0 if request.thinking == "off" else len(reply.thinking)
        for piece in reply.thinking[:thinking]:
            await asyncio.sleep(self._delay)
            yield Event("thinking", piece)
        searches = 1 if request.web_search and reply.search else 0
        for event in DEMO_SEARCH[: 2 * searches]:
            await asyncio.sleep(self._delay)
            yield event
        count = min(len(tokens), request.max_tokens)
        written = 0
        for token in tokens[:count]:
            await asyncio.sleep(self._delay)
            yield token
            written += len(token)
            for end, citation in reply.citations:
                if written >= end > written - len(token):
                    yield Event("citation", citation)  # the cited sentence just ended
        yield Usage(
            prompt_words, count + thinking, "max_tokens" if count < len(tokens) else "end_turn",
            thinking_tokens=thinking, web_search_requests=searches,
        )

    async def close(self) -> None:
        return None
