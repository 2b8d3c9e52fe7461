"""Liveness: each process holds a lease in Redis, and whoever finds a lease expired buries
that process: its running streams end as `lost` (their followers are told), its presence
is taken away (their owners are told).

The lease is renewed by a thread of its own, on a connection of its own, not by the event
loop: a loop that falls behind under load still renews it, so a busy process is never
taken for a dead one. Only a process that really stopped (killed, or paused past the lease,
e.g. SIGSTOP) loses it. Such a process learns it when it resumes (`Beat.listed` is false):
its streams were ended by another, and it stops their generations.

A process killed with SIGKILL is noticed within PROCESS_LEASE + HEARTBEAT_INTERVAL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .connection import CONNECT_TIMEOUT
from .scripts import HEARTBEAT

try:
    import redis
    from redis.exceptions import RedisError
except ImportError:  # the optional extra; RedisStore() says what to install
    redis = None  # type: ignore[assignment]
    RedisError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("sseserver.redis")

# A process counts as alive this long after its last beat; beats come every
# HEARTBEAT_INTERVAL. A pause shorter than PROCESS_LEASE - HEARTBEAT_INTERVAL is survived.
PROCESS_LEASE: Final = 4.0
HEARTBEAT_INTERVAL: Final = 0.5
# Process bookkeeping sets live this long past the last beat (they outlive the lease so
# that a survivor can still bury a dead process).
REGISTRY_TTL: Final = 3600.0
# A beat that does not answer within this long counts as Redis unreachable.
BEAT_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class Beat:
    """What one renewal found."""

    reached: bool  # Redis answered
    held: bool = True  # our lease had not lapsed
    listed: bool = True  # we were still registered (not buried, Redis kept its data)
    buried: int = 0  # dead processes this beat buried
    error: str = ""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class LeaseThread:
    """Renews this process's lease and buries dead ones, off the event loop."""

    def __init__(self, url: str, token: str, prefix: str, keep_ms: int,
                 on_beat: Callable[[Beat], None]) -> None:
        self._url = url
        self._args: list[str | int] = [
            token, prefix, _ms(PROCESS_LEASE), keep_ms, _ms(REGISTRY_TTL),
        ]
        self._client_name = f"sseserver-{token}-lease"
        self._on_beat = on_beat
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, BEAT_TIMEOUT + 1)

    def _run(self) -> None:
        assert redis is not None
        client = redis.Redis.from_url(
            self._url, socket_timeout=BEAT_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
            client_name=self._client_name,
        )
        script = client.register_script(HEARTBEAT)
        try:
            while not self._stop.is_set():
                try:
                    held, listed, buried = script(args=self._args)
                    beat = Beat(True, bool(held), bool(listed), int(buried))
                except (RedisError, OSError) as exc:
                    beat = Beat(False, error=str(exc) or type(exc).__name__)
                try:
                    self._loop.call_soon_threadsafe(self._on_beat, beat)
                except RuntimeError:
                    return  # the loop is closed: the store is gone
                self._stop.wait(HEARTBEAT_INTERVAL)
        finally:
            client.close()
