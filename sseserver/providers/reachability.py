"""Whether Claude's API can be reached now, from what the latest upstream requests met:
`/healthz` says `degraded` while they fail to connect, and each kind of failure is logged
once until a request gets through again, however many readers meet it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger("sseserver.upstream")

# A failure this old no longer says anything about now: with no request since, the
# status goes back to ok.
RECENT_SECONDS: Final = 60.0


@dataclass(slots=True)
class Reachability:
    host: str
    failures: int = 0  # in a row, since the last request that got an answer
    last_failure: float = 0.0
    last_message: str = ""
    logged: set[str] = field(default_factory=set)  # kinds logged since the last answer

    def failed(self, kind: str, message: str) -> None:
        """An upstream request could not get an answer. `message` names the host and the
        cause, never the key."""
        self.failures += 1
        self.last_failure = time.monotonic()
        self.last_message = message
        if kind not in self.logged:
            self.logged.add(kind)
            log.warning("upstream request failed (%s): %s Logged once until a request to "
                        "%s gets an answer.", kind, message, self.host)

    def answered(self) -> None:
        """An upstream request got an HTTP answer (an error status included)."""
        if self.failures:
            log.info("%s answers again after %d failed request(s)", self.host, self.failures)
        self.failures = 0
        self.logged.clear()

    def problem(self, now: float | None = None) -> str | None:
        """Why the upstream looks unreachable now, or None."""
        if not self.failures:
            return None
        age = (time.monotonic() if now is None else now) - self.last_failure
        if age > RECENT_SECONDS:
            return None
        requests = "request" if self.failures == 1 else "requests in a row"
        return (f"{self.failures} upstream {requests} failed, the last {age:.0f} s ago: "
                f"{self.last_message}")
