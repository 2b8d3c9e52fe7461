"""The lock (docs/testing.md, "The lock and make upgrade") is what the suite runs on, agrees
with itself, and still satisfies pyproject.toml's ranges: drift between them fails here."""

from __future__ import annotations

import tomllib
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from requirements.lock import pins

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _ranges(*extras: str) -> list[Requirement]:
    specs = list(PROJECT["dependencies"])
    for extra in extras:
        specs += PROJECT["optional-dependencies"][extra]
    return [Requirement(spec) for spec in specs]


@pytest.mark.parametrize(
    ("lock", "extras"), [("run.txt", ()), ("test.txt", ("dev",)), ("bench.txt", ("dev", "bench"))]
)
def test_every_range_is_satisfied_by_its_pin(lock: str, extras: tuple[str, ...]) -> None:
    pinned = pins(LOCKS / lock)
    for requirement in _ranges(*extras):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} does not pin {name}: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement}: run make lock"
        )


def test_the_locks_agree_on_every_version() -> None:
    test = pins(LOCKS / "test.txt")
    for other in ("run.txt", "bench.txt"):
        for name, version in pins(LOCKS / other).items():
            if name in test:
                assert test[name] == version, (
                    f"{other} has {name}=={version}, test.txt {test[name]}"
                )


def test_the_suite_runs_on_the_test_lock() -> None:
    installed: dict[str, str] = {
        str(canonicalize_name(d.metadata["Name"])): d.version for d in distributions()
    }
    for name, version in pins(LOCKS / "test.txt").items():
        if name == "uvloop" and name not in installed:
            continue  # not on Windows: the one marker in the lock
        assert installed.get(name) == version, (
            f"{name} is {installed.get(name)} here, the lock says {version}: run make test"
        )


def test_pins_reads_names_as_pip_does(tmp_path: Path) -> None:
    lock = tmp_path / "x.txt"
    lock.write_text(
        "Foo_Bar.baz==1.2 \\\n    --hash=sha256:00\n"
        'uvloop==0.23.0 ; sys_platform != "win32" \\\n    --hash=sha256:11\n'
        "    # via\n    #   anthropic==9\n"
    )
    assert pins(lock) == {"foo-bar-baz": "1.2", "uvloop": "0.23.0"}
