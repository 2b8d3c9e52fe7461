"""The bench's peers must do exactly sseserver's demo workload: same tokens, same
frame bytes, or the comparison in `make bench` would not be like for like."""

from __future__ import annotations

import pytest

from bench.peers.common import DEMO_TEXT, frame, reply_tokens, to_json
from sseserver.providers import demo
from sseserver.sse import encode_event
from sseserver.sse import to_json as sse_to_json


@pytest.mark.parametrize("question", ["Hello", "", "  spaced \n out  ", "ü" * 300])
def test_peers_stream_the_demo_providers_tokens(question: str) -> None:
    assert DEMO_TEXT == demo.DEMO_TEXT
    assert list(reply_tokens(question, None)) == list(demo.demo_tokens(question))


@pytest.mark.parametrize("data", ["token", ' "quoted" ', "ü€😀", {"a": [1, None]}])
def test_peers_write_sseservers_frame_bytes(data: object) -> None:
    assert to_json(data) == sse_to_json(data)
    assert frame("S", 7, "message", to_json(data)) == encode_event(
        "message", sse_to_json(data), "S:7"
    )
