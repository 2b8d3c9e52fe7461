"""Offline provider: a deterministic reply with token-like pacing, so the service works
(and can be load-tested) without an API key or a network."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator

from .base import GenerationRequest, Usage

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

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Usage, None]:
        question = request.messages[-1].content
        tokens = demo_tokens(question)
        count = min(len(tokens), request.max_tokens) if self._tokens is None else self._tokens
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        yield Usage(input_tokens=prompt_words, output_tokens=0, stop_reason=None)
        for index in range(count):
            # sleep(0) still yields, so a zero-delay demo never starves other streams.
            await asyncio.sleep(self._delay)
            yield tokens[index % len(tokens)]  # --demo-tokens past the text starts it again
        stop_reason = "max_tokens" if self._tokens is None and count < len(tokens) else "end_turn"
        yield Usage(input_tokens=prompt_words, output_tokens=count, stop_reason=stop_reason)

    async def close(self) -> None:
        return None
