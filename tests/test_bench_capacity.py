"""`bench/redis_capacity.py` must hold a process to the CPU share it says: a busy loop held
to 10% of a core uses about that, and nothing once the cap is gone but its own work."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.redis_capacity import CGROUP_V1, CGROUP_V2, cap_unavailable, capped
from sseserver.loadgen.stats import ProcStats

BUSY = "while True: pass"


def _share_used(pid: int, seconds: float) -> float:
    stats = ProcStats(pid)
    start, began = stats.cpu(), time.monotonic()
    time.sleep(seconds)
    return (stats.cpu() - start) / (time.monotonic() - began)


def test_a_capped_busy_loop_uses_its_share_and_the_cgroup_is_gone_after() -> None:
    assert cap_unavailable() is None, cap_unavailable()  # the test machine runs as root
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        with capped([process.pid], 0.1):
            held = _share_used(process.pid, 1.5)
        free = _share_used(process.pid, 0.5)
        left = [*CGROUP_V1.glob("sseserver-bench-*"), *CGROUP_V2.glob("sseserver-bench-*")]
    finally:
        process.kill()
        process.wait()
    print(f"busy loop: {held:.1%} of a core capped at 10%, {free:.0%} after")
    assert 0.05 <= held <= 0.15
    assert free >= 0.5  # on a 2-core machine under test load, at least half a core
    assert left == []
