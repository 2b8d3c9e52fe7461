"""Regenerates the hash-pinned locks from pyproject.toml's ranges (`make lock`, `make upgrade`).

pip-tools' pip-compile writes them, so installing needs nothing but pip: a fresh machine with
only Python 3.11+ installs exactly these files with `pip install --require-hashes`. The test
lock is resolved first; the run and bench locks are constrained by it, so a package shared by
two locks has one version in both.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (lock, pip-compile's extras, constrained by the test lock)
LOCKS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("test.txt", ("dev",), False),
    ("run.txt", (), True),
    ("bench.txt", ("dev", "bench"), True),
)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", re.MULTILINE)


def pins(lock: Path) -> dict[str, str]:
    """Package name (normalised as PEP 503 does) to its pinned version."""
    if not lock.exists():
        return {}
    text = lock.read_text()
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN.findall(text)}


def compile_lock(lock: str, extras: tuple[str, ...], constrained: bool, upgrade: bool) -> None:
    command = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
        "--allow-unsafe", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
        "--no-header", "--output-file", f"requirements/{lock}",
    ]
    for extra in extras:
        command += ["--extra", extra]
    if constrained:
        command += ["--constraint", "requirements/test.txt"]
    if upgrade:
        command.append("--upgrade")
    # Paths relative to the checkout, so the locks' comments do not depend on where it is.
    command += ["pyproject.toml", "requirements/build.in"]
    subprocess.run(command, check=True, cwd=ROOT)
    # The constraint is how the locks agree, not a reason a package is there.
    path = HERE / lock
    path.write_text(re.sub(r"\n    #   -c [^\n]*", "", path.read_text()))


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    rows = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, "-"), after.get(name, "-")
        if old != new:
            rows.append(f"{name:32} {old:>14} -> {new}")
    return rows


def main() -> None:
    upgrade = "--upgrade" in sys.argv[1:]
    before = {lock: pins(HERE / lock) for lock, _, _ in LOCKS}
    for lock, extras, constrained in LOCKS:
        compile_lock(lock, extras, constrained, upgrade)
    merged_before: dict[str, str] = {}
    merged_after: dict[str, str] = {}
    for lock, _, _ in LOCKS:
        merged_before |= before[lock]
        merged_after |= pins(HERE / lock)
    rows = changes(merged_before, merged_after)
    print(f"{'package':32} {'old':>14}    new")
    print("\n".join(rows) if rows else "(no version changed)")


if __name__ == "__main__":
    main()
