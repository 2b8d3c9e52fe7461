"""A lean reader of the Messages API's event stream: bytes in, event dicts out.

Why not the SDK's own: its stream builds two pydantic models per text delta and keeps a
snapshot of the whole message, which a relay does not need; on a relay that was most of
the server's CPU (docs/performance.md). This reads only what the relay uses: each event's
JSON `data` (which names its own `type`), skipping `ping`. The format is Anthropic's fixed one
(`event: NAME`, `data: JSON`, blank line), read with the WHATWG line rules that matter
for it: LF or CRLF line ends, an event ends at a blank line, `data:` lines join with LF.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


async def anthropic_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Each event's parsed `data`, in order; `ping` events are skipped."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\n\n" not in buffer and b"\r\n\r\n" not in buffer:
            continue
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            data = _data(block)
            if data is not None:
                yield data
    # What is left had no blank line after it: an event cut off, which WHATWG discards.


def _data(block: bytes) -> dict[str, Any] | None:
    parts = [line[5:].removeprefix(b" ") for line in block.split(b"\n")
             if line.startswith(b"data:")]
    if not parts:
        return None  # a comment, or an event without data
    payload = parts[0] if len(parts) == 1 else b"\n".join(parts)
    value = json.loads(payload)
    if not isinstance(value, dict) or value.get("type") == "ping":
        return None
    return value
