"""The stream store on Redis (store.py), for several processes or hosts. Imported only
with --redis-url: the `redis` extra (`pip install 'sseserver[redis]'`) brings redis-py and
hiredis."""

from __future__ import annotations

from .connection import redacted_url
from .store import RedisStore

__all__ = ["RedisStore", "redacted_url"]
