"""What a run counts: `Stats`, shared by every connection and stream check of one run, and
`ProcStats`, the CPU and memory of the server under load, read from /proc.

Plain counters and arrays rather than objects per event: they are bumped from the data
callback of every connection, and the report reads them once at the end.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    """Counters shared by all workers; timings only while `recording` (the window)."""

    recording: bool = False
    events: int = 0
    messages: int = 0
    bytes: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    ramp_s: float = 0.0  # when all --connections were first open at once
    ttfe: array[float] = field(default_factory=lambda: array("d"))
    gaps: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)
    started: int = 0
    completed: int = 0
    cut: int = 0
    failed: int = 0
    resumes: int = 0
    # verification, over streams that ended (completed or failed, not cut at the deadline)
    checked: int = 0
    missing: int = 0
    duplicate: int = 0
    bad_id: int = 0
    no_done: int = 0
    wrong_count: int = 0
    counts: Counter[int] = field(default_factory=Counter)  # events per stream -> streams


class ProcStats:
    """CPU seconds and resident memory of a process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0
