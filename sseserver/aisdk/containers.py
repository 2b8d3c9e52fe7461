"""The code execution container a chat's replies ran in, read back from the history the
AI SDK's transport posts (docs/protocol.md, "The AI SDK's chat route"): chunks.py puts a
reply's container in its message's metadata (`finish`'s `messageMetadata`), which `useChat`
keeps on the message and sends back with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import BadRequest
from ..ids import API_ID


def last_container(messages: list[Any], now: datetime) -> str | None:
    """The id of the latest container the history's replies name (`metadata.container`,
    as chunks.py sends it) that has not expired, as @ai-sdk/anthropic's
    `forwardAnthropicContainerIdFromLastStep` looks for it, from the last step back.
    An expired one would fail the request, where leaving it out gives a new container."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        metadata = message.get("metadata") if message["role"] == "assistant" else None
        found = metadata.get("container") if isinstance(metadata, dict) else None
        if not isinstance(found, dict) or found.get("id") is None:
            continue
        container_id = found["id"]
        if not isinstance(container_id, str) or not API_ID.fullmatch(container_id):
            raise BadRequest(f"messages[{index}].metadata.container.id must be a container id "
                             "from an earlier reply (1 to 128 characters of A-Z a-z 0-9 _ -).")
        if not _expired(found.get("expiresAt"), now):
            return container_id
    return None


def _expired(expires_at: object, now: datetime) -> bool:
    """Whether a container's `expiresAt` (RFC 3339) has passed; one that cannot be read is
    taken as live, and the API decides."""
    if not isinstance(expires_at, str):
        return False
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now
