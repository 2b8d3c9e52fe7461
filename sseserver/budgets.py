"""Users' token budgets: `--budget-tokens` per user per `--budget-window` (or a token's
own `sse:budget`), counted from each reply's usage (docs/operations.md, "Users").

    start ─▶ reserve: refused (429, Retry-After: the window's end) when what the user
             spent and holds back, plus this request's input estimate, reaches the
             budget; else hold back the input estimate + max_tokens
    end   ─▶ settle: the hold goes back, what the reply counted is added

What a reply counts: its input at full price, its prompt-cache writes and its output
(thinking included) one for one, and its prompt-cache reads at a tenth (rounded up),
as Anthropic bills a read at a tenth of an input token's price: a long conversation
whose history is read from the cache is not charged its whole history on every turn.

Holding back max_tokens at the start is what keeps concurrent starts from overshooting:
each start sees what the others hold, so the last one admitted can take the count past
the budget by less than its own max_tokens. The input estimate (INPUT_ESTIMATE) stands
for the prompt, whose token count is known only once the reply starts; a reply that
continues after server tools sends more input than that.

Windows are fixed and aligned to the Unix epoch: with `1d`, each starts at 00:00 UTC. In
memory the counts are this process's; on Redis they are the fleet's (store/quotas.py).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Final

from .config import Settings
from .errors import BudgetExceeded, StoreUnavailable
from .identity import User
from .metrics import Metrics
from .providers import GenerationRequest, Usage
from .store.quotas import Quotas, Spent, Tally

log = logging.getLogger("sseserver.budgets")

# The discount of a prompt-cache read: a tenth of an input token.
CACHE_READ_DIVISOR: Final = 10
# Input estimate: a token holds at least about two bytes of UTF-8 in practice, and every
# request carries some tokens of its own framing.
BYTES_PER_TOKEN_AT_LEAST: Final = 2
FRAMING_TOKENS: Final = 32
# What a user without a budget is checked against: their spending is still counted, for
# /api/usage. Exact in Lua's numbers (doubles).
NO_BUDGET: Final = 2**53
# A window's counts outlive its end by this much, so a reply that ends just after it can
# still settle.
WINDOW_SLACK: Final = 3600.0


def counted(usage: Usage) -> Spent:
    """What a reply's usage counts against its user's budget, and of what kinds."""
    read = usage.cache_read_input_tokens
    spent = Spent(usage.input_tokens, usage.cache_creation_input_tokens, read,
                  usage.output_tokens)
    spent.counted = (spent.uncached + spent.cache_write + spent.output
                     + math.ceil(read / CACHE_READ_DIVISOR))
    return spent


def input_estimate(request: GenerationRequest) -> int:
    """Tokens the request's prompt may take, before the API has counted them."""
    size = len(request.system.encode()) if request.system else 0
    for message in request.messages:
        content = message.content
        size += len(content.encode()) if isinstance(content, str) else len(repr(content))
    size += sum(len(repr(tool)) for tool in request.tools)
    return FRAMING_TOKENS + math.ceil(size / BYTES_PER_TOKEN_AT_LEAST)


@dataclass(frozen=True, slots=True)
class Hold:
    """What a running reply holds back in its user's window."""

    user: str
    window: int
    tokens: int


class Budgets:
    def __init__(self, quotas: Quotas, settings: Settings, metrics: Metrics) -> None:
        self._quotas = quotas
        self._default = settings.budget_tokens
        self._window = settings.budget_window
        self._metrics = metrics

    def budget(self, user: User) -> int:
        """The user's budget per window; 0 means none."""
        return user.budget if user.budget is not None else self._default

    def _now(self) -> tuple[int, float]:
        """The current window's number, and the seconds until it ends."""
        now = time.time()
        window = int(now // self._window)
        return window, (window + 1) * self._window - now

    async def reserve(self, user: User, request: GenerationRequest) -> Hold:
        """Hold back what the request may spend, or BudgetExceeded. Without a budget the
        hold is made all the same: the reply's spending is counted for /api/usage."""
        budget = self.budget(user) or NO_BUDGET
        window, left = self._now()
        need = input_estimate(request)
        hold = need + request.max_tokens
        taken, _ = await self._quotas.reserve(user.id, window, need, hold, budget,
                                              left + WINDOW_SLACK)
        if not taken:
            raise BudgetExceeded(
                f"You have used your budget of {budget} tokens for this window; it starts "
                f"again in {math.ceil(left)} s.",
                headers={"Retry-After": str(max(1, math.ceil(left)))},
            )
        return Hold(user.id, window, hold)

    async def settle(self, hold: Hold, usage: Usage | None) -> None:
        """A reply ended (`usage` None: it never started). Never raises: a count Redis
        could not take is lost, and the hold goes with the process's lease."""
        spent = counted(usage) if usage is not None else Spent()
        if spent.counted:
            for kind in ("uncached", "cache_write", "cache_read", "output"):
                figure = getattr(spent, kind)
                if figure:
                    self._metrics.budget_tokens.labels(kind).inc(figure)
            self._metrics.budget_counted.inc(spent.counted)
        ttl = (hold.window + 1) * self._window - time.time() + WINDOW_SLACK
        try:
            await self._quotas.settle(hold.user, hold.window, hold.tokens, spent, max(ttl, 1))
        except StoreUnavailable as exc:
            log.warning("budget of %r: could not count a reply's %d tokens: %s",
                        hold.user, spent.counted, exc)

    async def usage(self, user: User) -> dict[str, Any]:
        """`GET /api/usage`: this window's spending and what is left."""
        window, left = self._now()
        tally: Tally = await self._quotas.tally(user.id, window)
        budget = self.budget(user)
        spent = tally.spent
        return {
            "user": user.id,
            "window": {
                "start": int(window * self._window),
                "end": int((window + 1) * self._window),
                "resets_in": math.ceil(left),
            },
            "budget": budget or None,
            "tokens": {
                "input": spent.uncached, "cache_write": spent.cache_write,
                "cache_read": spent.cache_read, "output": spent.output,
            },
            "counted": spent.counted,
            "reserved": tally.reserved,
            "remaining": max(0, budget - spent.counted - tally.reserved) if budget else None,
        }
