"""The rule for a missing system tool (tests/support/system_tools.py): locally a skip that names the
apt-get line to run, under CI a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .support.system_tools import (
    CHROMIUM,
    CURL,
    IP,
    NGINX,
    NODE,
    NPM,
    REDIS_SERVER,
    TC,
    Tool,
    require,
    require_root,
)

ABSENT = Tool("sseserver-no-such-tool", "/nonexistent/sseserver-no-such-tool", "no-such-pkg")
ALSO_ABSENT = Tool("sseserver-no-such-either", "/nonexistent/either", "no-such-pkg")
SUDO = "" if os.geteuid() == 0 else "sudo "


def test_a_missing_tool_skips_locally_with_the_apt_get_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(ABSENT)
    assert str(skipped.value) == (
        f"sseserver-no-such-tool is missing: run `{SUDO}apt-get install no-such-pkg`"
    )


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require(ABSENT)
    assert f"run `{SUDO}apt-get install no-such-pkg`" in str(failed.value)
    assert "CI runs every test" in str(failed.value)


def test_every_missing_tool_is_named_and_each_package_installed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(CURL, ABSENT, ALSO_ABSENT)
    message = str(skipped.value)
    assert message == ("sseserver-no-such-tool, sseserver-no-such-either are missing:"
                       f" run `{SUDO}apt-get install no-such-pkg`")


def test_a_tool_found_on_path_counts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Off Debian's path, the tool is still found where PATH leads."""
    tool = tmp_path / "sseserver-tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = Tool("sseserver-tool", "/nonexistent/sseserver-tool", "x")
    require(found)
    assert found.path == str(tool)


def test_root_is_required_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="network namespace needs root"):
        require_root("a network namespace")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="network namespace needs root"):
        require_root("a network namespace")


def test_this_machine_has_every_tool_the_suite_needs() -> None:
    """The tools `make system-deps` installs: under CI, a missing one fails here too, by
    name, even when the test that needs it is deselected."""
    require(CHROMIUM, REDIS_SERVER, NGINX, CURL, IP, TC, NODE, NPM)
