"""Followers and their shared timer (subscriber.py), with a transport we control."""

from __future__ import annotations

import asyncio
import dataclasses

from sseserver.config import Settings
from sseserver.metrics import Live, Metrics
from sseserver.subscriber import FOLLOW_HIGH_WATER, PING_CHUNK, Follower, Followers


class FakeTransport:
    """Records writes; `buffered` plays the socket's unsent bytes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def _follower(transport: FakeTransport) -> Follower:
    return Follower(transport, Live())  # type: ignore[arg-type]


async def test_push_writes_and_counts_until_the_buffer_is_full() -> None:
    transport = FakeTransport()
    follower = _follower(transport)
    waiting = follower.follow_from(3)
    await asyncio.sleep(0)
    assert follower.push(b"chunk", 4)
    assert (transport.writes, follower.next_index, follower.live.events_sent) == ([b"chunk"], 4, 1)
    assert not waiting.done()
    transport.buffered = FOLLOW_HIGH_WATER + 1
    assert not follower.push(b"more", 5)  # behind now: it will catch up by reading
    await asyncio.wait_for(waiting, 1)
    assert (transport.writes, follower.next_index, follower.ended) == ([b"chunk"], 4, False)


async def test_end_wakes_the_follower() -> None:
    follower = _follower(FakeTransport())
    waiting = follower.follow_from(0)
    await asyncio.sleep(0)
    follower.end()
    await asyncio.wait_for(waiting, 1)
    assert follower.ended


def _followers(heartbeat: float, send_timeout: float) -> Followers:
    settings = dataclasses.replace(Settings(), heartbeat=heartbeat, send_timeout=send_timeout)
    return Followers(settings, Metrics())


def test_a_silent_follower_is_pinged_after_the_heartbeat() -> None:
    followers = _followers(heartbeat=1, send_timeout=30)
    assert followers.tick == 0.25
    transport = FakeTransport()
    follower = _follower(transport)
    followers.add(follower)
    follower.wrote = True
    followers.scan()  # a frame went out during this tick: no ping
    for _ in range(3):
        followers.scan()
    assert transport.writes == []
    followers.scan()  # the fourth silent tick: one heartbeat without a frame
    assert transport.writes == [PING_CHUNK]


def test_a_follower_blocked_for_the_send_timeout_is_dropped() -> None:
    followers = _followers(heartbeat=15, send_timeout=2)
    transport = FakeTransport()
    follower = _follower(transport)
    followers.add(follower)
    transport.buffered = FOLLOW_HIGH_WATER + 1
    for _ in range(3):
        followers.scan()
    assert not transport.aborted
    transport.buffered = 0  # drained in time: the count starts again
    followers.scan()
    transport.buffered = FOLLOW_HIGH_WATER + 1
    for _ in range(3):
        followers.scan()
    assert not transport.aborted
    followers.scan()
    assert transport.aborted
    assert follower.slow
    assert transport.writes == []  # never pinged while blocked
