"""The lean reader of Anthropic's event stream (providers/anthropic_events.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from sseserver.providers.anthropic_events import anthropic_events

from .fake_anthropic import sse_frame


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
