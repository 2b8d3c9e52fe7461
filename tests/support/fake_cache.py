"""The fake's prompt cache: Anthropic's prefix caching, modelled closely enough to test
where a client puts its cache markers.

A request is a sequence of blocks in the API's cache order: tools, then system, then each
message's content blocks (a string content is one block). A breakpoint is a block with
`cache_control`, or the request's last block when `cache_control` is top-level
(automatic caching). At each breakpoint whose prefix is at least `min_tokens` long, the
prefix is written; a request reads the longest prefix written before that ends on a block
boundary at most `LOOKBACK` blocks before one of its breakpoints. The figures are then
Anthropic's three: read from the cache, written to it, and the rest (after the last
breakpoint) at full price. Changing `thinking` changes every messages prefix, as changing
the thinking parameters invalidates message cache breakpoints in the API.

Tokens are estimated as in `count_output_tokens`: a token per 4 bytes of the block's JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

LOOKBACK: Final = 20


@dataclass(frozen=True)
class CacheUse:
    read: int
    write: int
    uncached: int
    ttl: str
    """Of the write: "5m" or "1h"."""


def _tokens(part: object) -> int:
    return max(1, math.ceil(len(json.dumps(part, sort_keys=True).encode()) / 4))


def _without_marker(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _blocks(body: dict[str, Any]) -> Iterator[tuple[object, object]]:
    """(the block as it counts for the prefix, its cache_control or None), in order."""
    for tool in body.get("tools") or ():
        yield _without_marker(tool), tool.get("cache_control")
    system = body.get("system")
    if isinstance(system, str):
        yield {"type": "text", "text": system}, None
    elif isinstance(system, list):
        for block in system:
            yield _without_marker(block), block.get("cache_control")
    thinking = body.get("thinking")
    for number, message in enumerate(body.get("messages") or ()):
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in content:
            part: dict[str, Any] = {"role": message["role"], **_without_marker(block)}
            if number == 0:
                part["thinking"] = thinking  # chained into every later prefix
            yield part, block.get("cache_control")


class PromptCache:
    def __init__(self, min_tokens: int = 1024) -> None:
        self.min_tokens = min_tokens
        """The shortest prefix the API caches (1,024 tokens for most models)."""
        self._written: dict[str, int] = {}

    def use(self, body: dict[str, Any]) -> CacheUse | None:
        """Read and write the cache for one request; None when it caches nothing."""
        keys: list[str] = []
        totals: list[int] = []
        markers: list[int] = []
        digest = hashlib.sha256(json.dumps(body.get("model")).encode())
        total = 0
        ttl = "5m"
        for index, (part, marker) in enumerate(_blocks(body)):
            digest.update(json.dumps(part, sort_keys=True).encode())
            keys.append(digest.copy().hexdigest())
            total += _tokens(part)
            totals.append(total)
            if isinstance(marker, dict):
                markers.append(index)
                ttl = marker.get("ttl", "5m")
        top = body.get("cache_control")
        if isinstance(top, dict) and keys:
            markers.append(len(keys) - 1)
            ttl = top.get("ttl", "5m")
        breakpoints = sorted(m for m in set(markers) if totals[m] >= self.min_tokens)
        if not breakpoints:
            return None
        read = 0
        for point in breakpoints:
            for index in range(point, max(-1, point - LOOKBACK), -1):
                if keys[index] in self._written:
                    read = max(read, totals[index])
                    break
        for point in breakpoints:
            self._written[keys[point]] = totals[point]
        last = totals[breakpoints[-1]]
        return CacheUse(read=read, write=last - read, uncached=total - last, ttl=ttl)
