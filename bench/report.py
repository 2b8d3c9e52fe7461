"""What `make bench` prints and writes: a line per point as it is measured, a table of
medians per scenario, the targets' verdicts, and the files under `--out` (artifacts/):
`bench-STAMP.md` (the tables), `bench-STAMP.json` (every loadgen report) and the logs.

Medians, because the machine may be shared: one disturbed run moves a median less than a
mean. Each point also carries the CPU other processes used on each core meanwhile
("foreign"), so a noisy point can be told from a slow server.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path

from .scenarios import COLUMNS, TARGETS, Report, Results, Scenario, Target, median


def point_line(scenario: Scenario, stack: str, rep: int, report: Report) -> str:
    parts = []
    for key in scenario.columns:
        column = COLUMNS[key]
        value = column.get(report)
        parts.append(f"{column.header} {'-' if value is None else column.fmt.format(value)}")
    b = report["bench"]
    ok = "verified" if report["verification"]["ok"] else "VERIFICATION FAILED"
    errors = ",".join(f"{k}={v}" for k, v in report["errors"].items()) or "no errors"
    return (f"{stack:<14} #{rep}: " + ", ".join(parts) + f"; {ok}, {errors}; foreign CPU "
            f"core0 {b['foreign_core0_pct']:.0f}% core1 {b['foreign_core1_pct']:.0f}%")


def render_table(scenario: Scenario, per_stack: dict[str, list[Report]]) -> str:
    """Medians per stack, the headline metric also as a ratio to sseserver."""
    headline = COLUMNS[scenario.columns[0]]
    base = median(per_stack.get("sseserver", []), headline)
    headers = ["stack", *(COLUMNS[c].header for c in scenario.columns), "÷ sseserver",
               "verified", "errors", "foreign core0 %", "runs"]
    rows: list[list[str]] = []
    for stack, reports in per_stack.items():
        row = [stack]
        for key in scenario.columns:
            value = median(reports, COLUMNS[key])
            row.append("-" if value is None else COLUMNS[key].fmt.format(value))
        value = median(reports, headline)
        row.append(f"{value / base:.2f}" if value is not None and base else "-")
        verified = sum(1 for r in reports if r["verification"]["ok"])
        row.append(f"{verified}/{len(reports)}")
        errors = sum(sum(r["errors"].values()) for r in reports)
        row.append(str(errors))
        row.append(f"{statistics.median(r['bench']['foreign_core0_pct'] for r in reports):.0f}")
        row.append(str(len(reports)))
        rows.append(row)
    return markdown_table(headers, rows)


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) if i and _numeric(c) else c.ljust(w)
                              for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |"
            for r in rows]
    return "\n".join([line, rule, *body])


def _numeric(cell: str) -> bool:
    """Numbers are right-aligned in the tables, words left-aligned."""
    return cell.translate(str.maketrans("", "", ",./-")).isdigit()


def verdicts(results: Results,
             targets: Sequence[Target] = TARGETS) -> list[tuple[str, str, str]]:
    """(scenario, target, measured and whether met) for each target whose scenario ran."""
    out: list[tuple[str, str, str]] = []
    for target in targets:
        judged = target.judge(results)
        if judged is not None:
            met, measured = judged
            out.append((target.scenario, target.text, f"{'MET' if met else 'NOT MET'}: {measured}"))
    return out


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in ("aiohttp", "anthropic", "aiohttp-sse", "sse-starlette", "uvicorn",
                 "httptools"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{name} {importlib.metadata.version(name)}")
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def header(quick: bool, repeats: int, server_core: str, load_core: str) -> str:
    """The run's first line: when, on what, how the cores were split, how many runs."""
    return (f"sseserver bench {'(quick) ' if quick else ''}"
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine()}; "
            f"server on core {server_core}, load on core {load_core}; "
            f"medians of {repeats} run(s)")


def summary(title: str, selected: Sequence[Scenario], results: Results, quick: bool,
            seconds: float) -> str:
    """The closing Markdown: every scenario's table, the targets, the run's length."""
    lines = [f"# {title}", ""]
    for scenario in selected:
        if scenario.key in results:
            lines += [f"## {scenario.key} {scenario.title}", "",
                      render_table(scenario, results[scenario.key]), ""]
    judged = verdicts(results)
    if judged:
        heading = ("## Targets, judged at --quick's smaller sizes: a smoke test only"
                   if quick else "## Targets")
        lines += [heading, "",
                  markdown_table(["scenario", "target", "sseserver"], [list(v) for v in judged]),
                  ""]
    lines.append(f"Total {seconds:.0f} s.")
    return "\n".join(lines)


def write(out: Path, stamp: str, title: str, text: str, results: Results, logs: Path) -> None:
    """The summary and every report under `out`; says where they went."""
    (out / f"bench-{stamp}.md").write_text(text + "\n")
    (out / f"bench-{stamp}.json").write_text(json.dumps(
        {"header": title, "results": results}, indent=1))
    print(f"\nresults: {out / f'bench-{stamp}.md'} and .json, logs in {logs}")
