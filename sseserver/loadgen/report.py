"""The figures of a run, as a dict (what `--json` prints and `make bench` reads) and as
the human-readable summary.

Percentiles are nearest-rank over every value recorded in the window, not estimates: the
runs are bounded, so the arrays stay small enough to sort.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .runner import Options
    from .stats import ProcStats, Stats

_PERCENTILES: Final = (50, 90, 99)


def percentiles(values: Sequence[float] | array[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank) in ms; empty dict when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)
    out = {f"p{p}": ordered[max(0, math.ceil(p / 100 * n) - 1)] * scale for p in _PERCENTILES}
    out["max"] = ordered[-1] * scale
    out["n"] = n
    return out


def build_report(
    o: Options, s: Stats, w: dict[str, float], rss_start: int, wall: float,
    server: ProcStats | None,
) -> dict[str, Any]:
    """The run's report: `w` is what the measuring window counted (see `LoadGen._window`),
    `s` the run's totals and timings, `server` the process whose CPU and RSS were read."""
    seconds = w.get("seconds", 0.0)

    def rate(n: float) -> float:
        return n / seconds if seconds > 0 else 0.0

    added: dict[str, float] | None = None
    if o.pace_ms is not None:
        pace = o.pace_ms / 1000
        added = percentiles([max(0.0, g - pace) for g in s.gaps])
    verification = {
        "streams_checked": s.checked,
        "missing": s.missing,
        "duplicate": s.duplicate,
        "bad_id": s.bad_id,
        "no_done": s.no_done,
        "wrong_count": s.wrong_count,
        "events_per_stream": dict(sorted(s.counts.items())[:5]),
    }
    verification["ok"] = (
        s.checked > 0 and s.missing == s.duplicate == s.bad_id == s.no_done == 0
        and s.wrong_count == 0
    )
    report: dict[str, Any] = {
        "url": o.url, "mode": o.mode, "connections": o.connections,
        "drop_after": o.drop_after, "pace_ms": o.pace_ms, "wall_s": wall,
        "window_s": seconds,
        "events": int(w.get("events", 0)), "events_per_s": rate(w.get("events", 0)),
        "messages": int(w.get("messages", 0)), "messages_per_s": rate(w.get("messages", 0)),
        "bytes_per_s": rate(w.get("bytes", 0)),
        "ttfe_ms": percentiles(s.ttfe), "inter_event_ms": percentiles(s.gaps),
        "added_latency_ms": added,
        "streams": {"started": s.started, "completed": s.completed, "cut": s.cut,
                    "failed": s.failed, "resumes": s.resumes},
        "errors": dict(s.errors), "verification": verification,
        "peak_connections": s.peak_connections,
        "ramp_s": s.ramp_s or None,
        "loadgen": {"cpu_s": w.get("cpu", 0.0),
                    "cpu_pct": 100 * w.get("cpu", 0.0) / seconds if seconds else 0.0},
    }
    if server is not None and "server_cpu" in w:
        cpu = w["server_cpu"]
        peak = int(w.get("peak_rss", 0))
        report["server"] = {
            "pid": server.pid, "cpu_s": cpu,
            "cpu_pct": 100 * cpu / seconds if seconds else 0.0,
            "events_per_cpu_s": w["events"] / cpu if cpu else 0.0,
            "messages_per_cpu_s": w["messages"] / cpu if cpu else 0.0,
            "rss_start": rss_start, "rss_peak": peak,
            "rss_per_conn": (peak - rss_start) / max(1, s.peak_connections),
        }
    return report


def format_report(r: dict[str, Any]) -> str:
    """The human-readable summary."""

    def pct(d: dict[str, float] | None) -> str:
        if not d:
            return "-"
        return (f"p50 {d['p50']:.1f}  p90 {d['p90']:.1f}  p99 {d['p99']:.1f}  "
                f"max {d['max']:.1f} ms  (n={int(d['n'])})")

    v = r["verification"]
    st = r["streams"]
    lines = [
        f"{r['mode']} {r['url']}: {r['connections']} connections, "
        f"window {r['window_s']:.1f} s (run {r['wall_s']:.1f} s)",
        f"events        {r['events']:,} ({r['events_per_s']:,.0f}/s), messages "
        f"{r['messages']:,} ({r['messages_per_s']:,.0f}/s), {r['bytes_per_s'] / 1e6:.2f} MB/s",
        f"streams       started {st['started']}, completed {st['completed']}, "
        f"cut at the end {st['cut']}, failed {st['failed']}, resumes {st['resumes']}; "
        f"all {r['connections']} connections open after "
        + (f"{r['ramp_s']:.2f} s" if r["ramp_s"] else "- (never at once)"),
        f"first event   {pct(r['ttfe_ms'])}",
        f"inter-event   {pct(r['inter_event_ms'])}",
    ]
    if r["added_latency_ms"] is not None:
        lines.append(f"added latency {pct(r['added_latency_ms'])}  (gap - {r['pace_ms']} ms)")
    errors = ", ".join(f"{k} {n}" for k, n in sorted(r["errors"].items())) or "none"
    lines.append(f"errors        {errors}")
    lines.append(
        f"verification  {'OK' if v['ok'] else 'FAILED'}: {v['streams_checked']} streams, "
        f"missing {v['missing']}, duplicate {v['duplicate']}, bad id {v['bad_id']}, "
        f"without done {v['no_done']}, wrong count {v['wrong_count']}"
    )
    if "server" in r:
        sv = r["server"]
        lines.append(
            f"server        pid {sv['pid']}: {sv['cpu_s']:.2f} CPU-s ({sv['cpu_pct']:.0f}% of a "
            f"core), {sv['events_per_cpu_s']:,.0f} events per CPU-second, RSS "
            f"{sv['rss_start'] / 2**20:.1f} -> peak {sv['rss_peak'] / 2**20:.1f} MiB "
            f"({sv['rss_per_conn'] / 1024:.1f} KiB per connection)"
        )
    lg = r["loadgen"]
    lines.append(f"loadgen       {lg['cpu_s']:.2f} CPU-s ({lg['cpu_pct']:.0f}% of a core)"
                 + (f" on {lg['loop']}" if "loop" in lg else ""))
    if lg["cpu_pct"] > 90:
        lines.append("warning: the load generator was busy >90% of the window; "
                     "the numbers above are a floor, not the server's limit")
    return "\n".join(lines)
