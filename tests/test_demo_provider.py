"""The demo provider: deterministic text, exact token counts, and real pacing."""

from __future__ import annotations

import time

from sseserver.providers import ChatMessage, DemoProvider, GenerationRequest, Usage
from sseserver.providers.demo import DEMO_TEXT, demo_tokens


def _request(text: str = "What is SSE?", max_tokens: int = 1024) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", text),), "claude-sonnet-5-5", max_tokens)


async def _collect(provider: DemoProvider, request: GenerationRequest) -> tuple[str, Usage]:
    text, usage = "", None
    async for item in provider.stream(request):
        if isinstance(item, Usage):
            usage = item
        else:
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
        "assert deprecation_warnings(['claude-sonnet-4-5-20250929']); "
        "print('anthropic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"
