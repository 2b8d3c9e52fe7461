"""What every peer shares: its command line, the demo workload, and the frames it sends."""

from __future__ import annotations

import argparse
import itertools
import json
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# sseserver's demo reply and tokenizer, copied rather than imported: importing
# sseserver.providers would load the Anthropic SDK (~50 MB of RSS) into every peer.
# tests/test_bench_peers.py keeps the copy identical.
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
_TOKEN = re.compile(r"\s*\S+|\s+$")
_QUESTION_CHARS = 200


def demo_tokens(question: str) -> list[str]:
    """The demo reply for a question, cut into tokens, as sseserver's demo provider does."""
    excerpt = " ".join(question.split())
    if len(excerpt) > _QUESTION_CHARS:
        excerpt = excerpt[:_QUESTION_CHARS] + "…"
    return _TOKEN.findall(DEMO_TEXT.format(question=excerpt))


@dataclass(frozen=True, slots=True)
class PeerOptions:
    host: str
    port: int
    delay: float  # seconds before each token, like sseserver's --demo-delay-ms
    tokens: int | None  # tokens per reply, like --demo-tokens (None: the demo text's)


def parse_options(description: str, argv: Sequence[str] | None = None) -> PeerOptions:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--demo-delay-ms", type=float, default=30.0)
    parser.add_argument("--demo-tokens", type=int)
    args = parser.parse_args(argv)
    return PeerOptions(args.host, args.port, args.demo_delay_ms / 1000, args.demo_tokens)


def reply_tokens(question: str, count: int | None) -> Iterator[str]:
    """The demo provider's tokens for this question (cycled to `count`, as it does)."""
    tokens = demo_tokens(question)
    return itertools.islice(itertools.cycle(tokens), len(tokens) if count is None else count)


def to_json(value: object) -> str:
    """The same compact JSON as sseserver's encoder, so every stack sends the same bytes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def new_stream_id() -> str:
    return secrets.token_urlsafe(12)


def meta(stream_id: str, provider: str) -> str:
    return to_json({"stream": stream_id, "model": "claude-sonnet-5-5", "provider": provider})


def usage(input_tokens: int, output_tokens: int, stop_reason: str | None) -> str:
    return to_json({"input_tokens": input_tokens, "output_tokens": output_tokens,
                    "stop_reason": stop_reason})


def frame(stream_id: str, index: int, event: str, data_json: str) -> bytes:
    """One SSE frame, byte for byte as sseserver writes it."""
    return f"id: {stream_id}:{index}\nevent: {event}\ndata: {data_json}\n\n".encode()
