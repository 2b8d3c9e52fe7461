"""Stream and event ids, made, checked and parsed in one place.

A stream id is unguessable and URL-safe; an event id is `<stream>:<index>`, so a
`Last-Event-ID` names its stream and a reconnect resumes that stream
(docs/protocol.md, "Ids and resume"). Neither ever holds CR, LF, NUL or ':' in the stream part.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

STREAM_ID_MAX: Final = 64
INDEX_DIGITS_MAX: Final = 9
# An id the Messages API gives (a tool call's, a file's, a container's), as this server
# accepts one back or puts one in a URL's path.
API_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")


def new_stream_id() -> str:
    return secrets.token_urlsafe(12)


def is_stream_id(value: str) -> bool:
    """What `new_stream_id` could have made: short, URL-safe characters only."""
    return 0 < len(value) <= STREAM_ID_MAX and all(c.isalnum() or c in "-_" for c in value)


def event_id(stream_id: str, index: int) -> str:
    return f"{stream_id}:{index}"


def parse_event_id(value: str) -> tuple[str, int] | None:
    """`stream:index` from a Last-Event-ID, or None when it is not one of ours."""
    stream_id, sep, index = value.rpartition(":")
    if not sep or not index.isascii() or not index.isdigit() or len(index) > INDEX_DIGITS_MAX:
        return None
    if not is_stream_id(stream_id):
        return None
    return stream_id, int(index)
