"""The demo provider: deterministic text, exact token counts, and real pacing."""

from __future__ import annotations

import dataclasses
import time

import pytest

from sseserver.providers import ChatMessage, DemoProvider, Event, GenerationRequest, Usage
from sseserver.providers.demo import DEMO_TEXT, demo_tokens, pick

SOURCE = "https://html.spec.whatwg.org/multipage/server-sent-events.html"


def _request(text: str = "What is SSE?", max_tokens: int = 1024) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", text),), "claude-sonnet-5-5", max_tokens)


async def _collect(provider: DemoProvider, request: GenerationRequest) -> tuple[str, Usage]:
    text, usage = "", None
    async for item in provider.stream(request):
        if isinstance(item, Usage):
            usage = item
        elif isinstance(item, str):
            text += item
    assert usage is not None
    return text, usage


def test_tokens_join_back_to_the_exact_text() -> None:
    tokens = demo_tokens("  line\nbreaks   and spaces ")
    assert "".join(tokens) == DEMO_TEXT.format(question="line breaks and spaces")
    assert all(token.strip() for token in tokens)


async def test_reply_mentions_the_demo_and_the_question() -> None:
    text, usage = await _collect(DemoProvider(delay_ms=0), _request("Why is the sky blue?"))
    assert "demo provider" in text
    assert text.endswith('You asked: "Why is the sky blue?"')
    assert usage.stop_reason == "end_turn"
    assert usage.output_tokens == len(demo_tokens("Why is the sky blue?"))
    assert usage.input_tokens == 5


async def test_demo_tokens_emits_exactly_n_tokens() -> None:
    provider = DemoProvider(delay_ms=0, tokens=1000)
    count = 0
    async for item in provider.stream(_request()):
        count += isinstance(item, str)
    assert count == 1000


async def test_max_tokens_cuts_the_reply() -> None:
    text, usage = await _collect(DemoProvider(delay_ms=0), _request(max_tokens=5))
    assert usage.output_tokens == 5
    assert usage.stop_reason == "max_tokens"
    assert text == "".join(demo_tokens("What is SSE?")[:5])


async def test_a_reply_shows_every_kind_of_event() -> None:
    """Thinking, a pretend search and one cited source, so the offline page shows each
    kind of event; the citation follows the sentence it supports."""
    request = dataclasses.replace(_request(), thinking="adaptive", web_search=2)
    items = [item async for item in DemoProvider(delay_ms=0).stream(request)]
    kinds = [type(i).__name__ if not isinstance(i, Event) else i.name for i in items]
    tokens = demo_tokens("What is SSE?")
    cited = next(n for n in range(len(tokens)) if "".join(tokens[:n + 1]).endswith("at work:"))
    assert kinds == [
        "Usage", *["thinking"] * 5, "tool", "tool_result",
        *["str"] * (cited + 1), "citation", *["str"] * (len(tokens) - cited - 1), "Usage",
    ]
    events = [i for i in items if isinstance(i, Event)]
    assert "".join(str(e.data) for e in events[:5]) == (
        "The reader wants to see what streams over the wire. I'll think briefly, look up "
        "the standard if I may, then answer and cite it."
    )
    assert [e.data for e in events[5:]] == [
        {"id": "srvtoolu_demo", "name": "web_search",
         "input": {"query": "Server-Sent Events standard"}},
        {"tool_use_id": "srvtoolu_demo", "name": "web_search",
         "results": [{"title": "HTML Standard: Server-sent events", "url": SOURCE,
                      "page_age": None}]},
        {"url": SOURCE, "title": "HTML Standard: Server-sent events",
         "cited_text": "To enable servers to push data to web pages over HTTP or using "
                       "dedicated server-push protocols, this specification introduces the "
                       "EventSource interface."},
    ]
    assert "".join(i for i in items if isinstance(i, str)) == "".join(tokens)
    usage = items[-1]
    assert isinstance(usage, Usage)
    assert (usage.thinking_tokens, usage.web_search_requests) == (5, 1)
    assert usage.output_tokens == len(tokens) + 5


async def test_a_reply_follows_the_request_s_options() -> None:
    """Thinking off: no thinking; no web search asked: no search. The citation stays."""
    request = dataclasses.replace(_request(), thinking="off", web_search=0)
    names = [i.name async for i in DemoProvider(delay_ms=0).stream(request)
             if isinstance(i, Event)]
    assert names == ["citation"]


async def test_demo_tokens_streams_text_only_whatever_the_options() -> None:
    """Load tests compare runs: with --demo-tokens a reply is N messages, nothing else."""
    request = dataclasses.replace(_request(), thinking="adaptive", web_search=1)
    items = [item async for item in DemoProvider(delay_ms=0, tokens=7).stream(request)]
    assert [type(i) for i in items] == [Usage, *[str] * 7, Usage]
    assert items[-1] == Usage(3, 7, "end_turn")


async def test_pacing_follows_delay_ms() -> None:
    started = time.monotonic()
    await _collect(DemoProvider(delay_ms=20, tokens=10), _request())
    assert 0.19 <= time.monotonic() - started < 0.6


def test_a_demo_server_never_imports_the_anthropic_sdk() -> None:
    """Importing the SDK costs memory in every process (docs/performance.md, "What limits
    the rest"): a demo or load-test server, which never calls it, must not pay for it."""
    import subprocess
    import sys

    probe = (
        "import sys; from sseserver.app import create_app; from sseserver.config import "
        "Settings; from sseserver.providers import create_provider; "
        "from sseserver.deprecations import deprecation_warnings; "
        "create_app(Settings(provider='demo')); create_provider(Settings(provider='demo')); "
        "assert deprecation_warnings(['claude-old'], {'claude-old': 'today'}); "
        "from sseserver.deprecations import sdk_table; assert sdk_table(); "
        "print('anthropic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("question", "kind", "marks"),
    [
        ("Show me some Python code", "code", ["```python\n", "```js\n"]),
        ("Compare SSE and WebSocket in a table", "table", ["| Direction |", "|---|"]),
        ("Give me a list of steps", "list", ["1. Get an API key", "- set an access token"]),
        ("Write a long answer", "long", ["## How a reply reaches this page"]),
        ("Think about this puzzle", "thinking", ["The answer is **9**"]),
        ("Search for the standard", "search", ["the `EventSource` interface."]),
        ("Why is the sky blue?", "default", ['You asked: "Why is the sky blue?"']),
    ],
)
async def test_the_question_picks_one_of_the_canned_replies(
    question: str, kind: str, marks: list[str]
) -> None:
    """A newcomer sees what the page renders (code, a table, a list, thinking, a search
    with citations), each reply the same every time it is asked."""
    assert pick(question) == kind
    request = dataclasses.replace(_request(), messages=(ChatMessage("user", question),),
                                  thinking="adaptive", web_search=1, max_tokens=4096)
    runs = [[item async for item in DemoProvider(delay_ms=0).stream(request)]
            for _ in range(2)]
    assert runs[0] == runs[1]
    text = "".join(i for i in runs[0] if isinstance(i, str))
    for mark in marks:
        assert mark in text
    names = [i.name for i in runs[0] if isinstance(i, Event)]
    citations = names.count("citation")
    assert citations == {"search": 2, "default": 1}.get(kind, 0)
    assert ("tool" in names) == (kind in ("search", "default"))
    usage = runs[0][-1]
    assert isinstance(usage, Usage)
    assert usage.stop_reason == "end_turn"
    assert usage.thinking_tokens == names.count("thinking")
