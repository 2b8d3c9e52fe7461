"""File descriptors: the open-files limit, how many client connections it leaves room for,
and saying so when it runs out (docs/operations.md, "Limits and timeouts").

Every client connection, upstream request and Redis connection is a descriptor. When none
is left, accept() fails: asyncio logs a traceback per second, and uvloop (libuv) accepts
and closes the connection by itself without telling the program, so clients see resets
and nothing is logged. Hence three things here: the soft limit is raised to the hard one
at start (a common service default is 1,024); client connections are capped below the
limit (`--max-connections`, half of it by default, so upstream requests and Redis keep
the other half); and one plain warning line, at most every LOG_EVERY seconds, when the
limit is reached, from either event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

try:
    import resource
except ImportError:  # not on Windows: nothing to raise there
    resource = None  # type: ignore[assignment]

log = logging.getLogger("sseserver.descriptors")

# Seconds between two warnings of one kind: a flood must not become a log flood.
LOG_EVERY: Final = 10.0
# A connection whose descriptor number is this close to the limit means the next accept
# may fail (Linux hands out the lowest free number).
NEAR_LIMIT: Final = 16
# Client connections allowed when the limit is unknown or unlimited.
FALLBACK_CONNECTIONS: Final = 10000


class Every:
    """Lets something through at most once per `seconds` (a warning that could repeat
    thousands of times per second under load)."""

    __slots__ = ("_last", "_seconds")

    def __init__(self, seconds: float = LOG_EVERY) -> None:
        self._seconds = seconds
        self._last = -seconds

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self._seconds:
            return False
        self._last = now
        return True


def open_files_limit() -> int | None:
    """The soft limit on open descriptors, or None when there is none (or no way to tell)."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit() -> int | None:
    """Raise the soft limit on open descriptors to the hard one; the limit now."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as exc:  # e.g. macOS caps it below an infinite hard limit
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
        else:
            log.info("open-files limit raised from %d to %d", soft, hard)
    return open_files_limit()


def connection_cap(configured: int, limit: int | None) -> int:
    """`--max-connections`, or when it is 0: half the open-files limit (at least 64)."""
    if configured:
        return configured
    if limit is None:
        return FALLBACK_CONNECTIONS
    return max(64, limit // 2)


class DescriptorWatch:
    """Warns, at most every LOG_EVERY seconds, when descriptors run out."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._near = Every()
        self._accept = Every()

    def accepted(self, descriptor: int) -> None:
        """A connection got descriptor number `descriptor`: near the limit, the next ones
        will be refused by the kernel (and under uvloop dropped without a word)."""
        if self.limit is not None and descriptor >= self.limit - NEAR_LIMIT and self._near.due():
            log.warning(
                "open files at the limit (%d): new connections are being dropped; raise the "
                "limit (ulimit -n, LimitNOFILE=) or lower --max-connections", self.limit,
            )

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """asyncio reports a failed accept to the loop's exception handler with a
        traceback, every second: one line instead."""
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("socket.accept() out of system"):
                if self._accept.due():
                    log.warning(
                        "cannot accept connections: %s (open-files limit %s); raise the "
                        "limit or lower --max-connections",
                        context.get("exception"), self.limit or "unknown",
                    )
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
