"""What the fleet shares besides streams: each client's (or user's) generation slots, and
each user's spending per budget window. In memory it is this process's; on Redis
(redis/quotas.py) every process's, where each check and its count are one step in Redis,
and what a dead process held is freed once its lease runs out.

Budgets are kept per window (a number: the window's start over its length), as tokens
spent by kind, what they counted (budgets.py), and what running replies reserved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

# Windows kept per process in memory before the stale ones are swept.
_SWEEP_AT = 10_000


@dataclass(slots=True)
class Spent:
    """Tokens of finished replies, as Anthropic counts them, and what they counted."""

    uncached: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output: int = 0
    counted: int = 0

    def add(self, other: Spent) -> None:
        self.uncached += other.uncached
        self.cache_write += other.cache_write
        self.cache_read += other.cache_read
        self.output += other.output
        self.counted += other.counted


@dataclass(slots=True)
class Tally:
    """A user's window: what was spent, and what running replies hold back."""

    spent: Spent = field(default_factory=Spent)
    reserved: int = 0


class Quotas(Protocol):
    async def take_slot(self, key: str, limit: int) -> bool:
        """One more generation for `key`, if fewer than `limit` run across the fleet."""
        ...

    def give_slot(self, key: str) -> None:
        """A generation of `key` ended. Never raises; done later if it cannot be now."""
        ...

    async def reserve(self, user: str, window: int, need: int, hold: int, budget: int,
                      ttl: float) -> tuple[bool, Tally]:
        """Hold back `hold` tokens of the user's window when what is spent and held, plus
        `need`, stays below `budget`; the window as it was, and whether it was taken.
        `ttl`: seconds the window must be kept."""
        ...

    async def settle(self, user: str, window: int, hold: int, spent: Spent,
                     ttl: float) -> None:
        """A reply ended: its hold goes back, what it spent is added."""
        ...

    async def tally(self, user: str, window: int) -> Tally:
        ...


class MemoryQuotas:
    """This process's: the per-client limit is counted by Generations itself."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, Tally]] = {}

    async def take_slot(self, key: str, limit: int) -> bool:
        return True

    def give_slot(self, key: str) -> None:
        pass

    def _window(self, user: str, window: int) -> Tally:
        current = self._windows.get(user)
        if current is not None and current[0] == window:
            return current[1]
        if len(self._windows) >= _SWEEP_AT:
            self._windows = {u: w for u, w in self._windows.items() if w[0] >= window}
        tally = Tally()
        if current is None or current[0] < window:
            self._windows[user] = (window, tally)
        return tally

    async def reserve(self, user: str, window: int, need: int, hold: int, budget: int,
                      ttl: float) -> tuple[bool, Tally]:
        tally = self._window(user, window)
        before = Tally(dataclasses.replace(tally.spent), tally.reserved)
        if tally.spent.counted + tally.reserved + need >= budget:
            return False, before
        tally.reserved += hold
        return True, before

    async def settle(self, user: str, window: int, hold: int, spent: Spent,
                     ttl: float) -> None:
        current = self._windows.get(user)
        if current is None or current[0] != window:
            return  # that window is over: nothing of it is read again
        tally = current[1]
        tally.reserved = max(0, tally.reserved - hold)
        tally.spent.add(spent)

    async def tally(self, user: str, window: int) -> Tally:
        current = self._windows.get(user)
        if current is None or current[0] != window:
            return Tally()
        return current[1]
