"""One UI message chunk as its SSE frame: `data: JSON` and a blank line, with no `id:` or
`event:` line, as the AI SDK's own servers write it (docs/protocol.md, "The AI SDK's chat
route")."""

from __future__ import annotations

import json
from typing import Any, Final

from ..sse import to_json

DONE: Final = b"data: [DONE]\n\n"


def chunk(value: dict[str, Any]) -> bytes:
    """One chunk as its SSE frame. A lone surrogate (which has no UTF-8) goes as an escape."""
    text = to_json(value)
    try:
        return b"data: %b\n\n" % text.encode()
    except UnicodeEncodeError:
        return b"data: %b\n\n" % json.dumps(value, separators=(",", ":")).encode()
