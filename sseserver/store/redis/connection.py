"""Connections to Redis: the command pool, how a failure is reported, and the URL as logs
may show it.

Each process holds a fixed number of connections, whatever its number of subscribers: the
command pool (COMMAND_CONNECTIONS, shared by the writer, reads and presence), the reader's
one pub/sub connection (live.py) and the lease thread's one (liveness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import urlsplit

from ...errors import StoreUnavailable

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ImportError:  # the optional extra is not installed; RedisStore() says so
    aioredis = None  # type: ignore[assignment]
    RedisError = OSError  # type: ignore[assignment,misc]

__all__ = ["MAX_CONNECTIONS", "RedisError", "command_client", "redacted_url", "unavailable"]

COMMAND_CONNECTIONS: Final = 8
# Every command must answer within COMMAND_TIMEOUT. These are our own asyncio timeouts,
# not redis-py's socket_timeout: with that set, redis-py sends through asyncio.wait_for,
# which on Python 3.11 loses a cancellation that lands as the send completes.
COMMAND_TIMEOUT: Final = 5.0
CONNECT_TIMEOUT: Final = 1.0
HEALTH_TIMEOUT: Final = 1.0
# Every connection of the process beyond the command pool: the reader and the lease thread.
OTHER_CONNECTIONS: Final = 2
MAX_CONNECTIONS: Final = COMMAND_CONNECTIONS + OTHER_CONNECTIONS


def command_client(url: str, token: str) -> Any:
    """The process's command pool, waiting for a free connection when all are busy."""
    if aioredis is None:
        raise RuntimeError("--redis-url needs the redis client: pip install 'sseserver[redis]'")
    # from_pool: the client owns its pool, and aclose() closes it.
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        url, max_connections=COMMAND_CONNECTIONS, timeout=COMMAND_TIMEOUT,
        socket_timeout=None, socket_connect_timeout=CONNECT_TIMEOUT,
        # One immediate retry, for a pooled connection that went stale while Redis
        # restarted; then fail fast, and /healthz says degraded.
        retry=Retry(NoBackoff(), 1), client_name=f"sseserver-{token}",
    ))


@contextlib.asynccontextmanager
async def unavailable(timeout: float = COMMAND_TIMEOUT) -> AsyncIterator[None]:
    """Bound the commands inside by `timeout`, and make any failure StoreUnavailable."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise StoreUnavailable(f"redis: no answer within {timeout:.0f}s") from exc
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc


def redacted_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
