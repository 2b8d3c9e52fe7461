"""The lean reader of Anthropic's event stream (providers/anthropic_events.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseserver.providers.anthropic_events import EventReader, anthropic_events

from .support.fake_anthropic import sse_frame


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(parts: Sequence[bytes]) -> list[dict[str, Any]]:
    return [event async for event in anthropic_events(_chunks(parts))]


DELTA = {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "a\nb 😀"}}


async def test_events_in_order_pings_skipped_any_chunking() -> None:
    wire = b"".join([
        sse_frame("message_start", {"type": "message_start"}),
        sse_frame("ping", {"type": "ping"}),
        sse_frame("content_block_delta", DELTA),
        sse_frame("message_stop", {"type": "message_stop"}),
    ])
    expected = [{"type": "message_start"}, DELTA, {"type": "message_stop"}]
    assert await _read([wire]) == expected
    assert await _read([wire[i:i + 1] for i in range(len(wire))]) == expected  # byte by byte


async def test_crlf_line_ends_and_multi_line_data() -> None:
    wire = b'event: x\r\ndata: {"type":\r\ndata: "message_stop"}\r\n\r\n'
    assert await _read([wire]) == [{"type": "message_stop"}]


async def test_an_event_cut_off_at_the_end_is_discarded() -> None:
    wire = sse_frame("message_start", {"type": "message_start"}) + b'event: x\ndata: {"type"'
    assert await _read([wire]) == [{"type": "message_start"}]


async def test_comments_and_dataless_events_are_skipped() -> None:
    assert await _read([b": keepalive\n\nevent: nothing\n\n"]) == []


async def test_unreadable_json_raises() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's own error, a ValueError
        await _read([b"data: {not json\n\n"])


# -- the text fast path: the same result as a full parse, or not taken -----------------------


def _texts(events: Sequence[object]) -> list[object]:
    """As the provider reads events: a text delta's text (empty ones left out); others."""
    out: list[object] = []
    for event in events:
        delta = event.get("delta") if isinstance(event, dict) else None
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            if delta["text"]:
                out.append(delta["text"])
        else:
            out.append(event)
    return out


def _fast(wire: bytes) -> list[object]:
    return _texts(EventReader(fast_text=True).feed(wire))


def _full(wire: bytes) -> list[object]:
    return _texts(EventReader(fast_text=False).feed(wire))


def _delta_frame(text: str, index: int = 0, *, ascii_only: bool = False) -> bytes:
    data = {"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}}
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=ascii_only)
    return f"event: content_block_delta\ndata: {payload}\n\n".encode("utf-8", "surrogatepass")


@settings(max_examples=300)
@given(texts=st.lists(st.text(), min_size=1, max_size=8), ascii_only=st.booleans(),
       index=st.integers(0, 10**6))
def test_fast_text_is_what_a_full_parse_gives(
    texts: list[str], ascii_only: bool, index: int,
) -> None:
    wire = b"".join(_delta_frame(t, index, ascii_only=ascii_only) for t in texts)
    fast = EventReader(fast_text=True).feed(wire)
    assert all(isinstance(text, str) for text in fast)  # the API's form: the fast path
    assert list(fast) == _full(wire) == [t for t in texts if t]
    # And in any chunking: here split in two at every 7th byte.
    for cut in range(0, len(wire), 7):
        reader = EventReader(fast_text=True)
        assert [*reader.feed(wire[:cut]), *reader.feed(wire[cut:])] == [t for t in texts if t]


def test_the_fast_path_yields_the_text_as_a_string_and_skips_empty_ones() -> None:
    wire = _delta_frame('a "quoted"\nline \\ 😀') + _delta_frame("") + _delta_frame("ü", 3)
    assert wire.startswith(
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"a \\"quoted\\"\\nline \\\\ \xf0\x9f\x98\x80"}}')
    assert _fast(wire) == ['a "quoted"\nline \\ 😀', "ü"]


@pytest.mark.parametrize("payload", [
    # Not the API's exact form: each is parsed whole, with the same result as without.
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":1}}',
    b'{"type":"content_block_delta","index":0,"delta":{"text":"a","type":"text_delta"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"} }',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"a"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}\nid: 1',
])
def test_other_shapes_are_parsed_whole(payload: bytes) -> None:
    wire = b"event: content_block_delta\ndata: " + payload + b"\n\n"
    assert isinstance(EventReader(fast_text=True).feed(wire)[0], dict)  # parsed whole
    assert _fast(wire) == _full(wire)


@pytest.mark.parametrize("payload", [
    b'{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\tb"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"b"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\x"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\xff"}}',
])
def test_what_a_full_parse_refuses_the_fast_path_refuses_too(payload: bytes) -> None:
    wire = b"event: content_block_delta\ndata: " + payload + b"\n\n"
    with pytest.raises(ValueError):  # noqa: PT011 - json's own error, a ValueError
        _fast(wire)
