"""What every peer shares: its command line, the demo workload, and the frames it sends."""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from aiohttp import web

# sseserver's own demo reply and tokenizer: importing the demo provider does not load the
# Anthropic SDK, so the peers stay as light as they should be.
from sseserver.providers.demo import DEMO_TEXT as DEMO_TEXT
from sseserver.providers.demo import demo_tokens as demo_tokens


@dataclass(frozen=True, slots=True)
class PeerOptions:
    host: str
    port: int
    delay: float  # seconds before each token, like sseserver's --demo-delay-ms
    tokens: int | None  # tokens per reply, like --demo-tokens (None: the demo text's)


def parse_options(description: str, argv: Sequence[str] | None = None) -> PeerOptions:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: a port the kernel picks")
    parser.add_argument("--demo-delay-ms", type=float, default=30.0)
    parser.add_argument("--demo-tokens", type=int)
    args = parser.parse_args(argv)
    return PeerOptions(args.host, args.port, args.demo_delay_ms / 1000, args.demo_tokens)


def listen(options: PeerOptions) -> socket.socket:
    """The peer's listening socket, its URL on stdout (`listening on http://HOST:PORT`, as
    sseserver prints it): with `--port 0` the kernel picks the port, and the bench and the
    tests learn it from that line. The server framework then serves on this socket (and
    sets its own backlog)."""
    sock = socket.create_server((options.host, options.port))
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    return sock


def run_aiohttp_peer(make_app: Callable[[PeerOptions], web.Application], doc: str) -> int:
    """Serve an aiohttp peer with handler cancellation on, as sseserver is served."""
    options = parse_options(doc)
    web.run_app(make_app(options), sock=listen(options), handler_cancellation=True,
                access_log=None, print=None)
    return 0


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
