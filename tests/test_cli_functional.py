"""`python -m sseserver` as a user starts it: a subprocess, the page, and `curl -N`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sseserver.config import OPTIONS
from sseserver.event_loop import resolved_loop

from .sse_parser import parse_all

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SSESERVER_", "ANTHROPIC_"))}
    return env | extra


@pytest.fixture(params=["uvloop", "asyncio"])
def server_process(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The server as a user starts it, on each event loop (`auto` is uvloop: see
    test_auto_loop_is_uvloop_when_installed); every other subprocess test runs uvloop."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0", "--demo-delay-ms", "1",
         "--loop", request.param],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"no URL printed: {line!r}"
        yield process, match.group(0)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)  # also closes the pipes


def test_server_serves_the_page_and_curl_streams_the_demo(
    server_process: tuple[subprocess.Popen[str], str],
) -> None:
    _process, url = server_process
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test (apt-get install curl)"
    page = subprocess.run([curl, "-sS", "-i", url + "/"], capture_output=True, text=True,
                          timeout=10, check=True).stdout
    assert page.startswith("HTTP/1.1 200")
    assert "<title>" in page
    stream = subprocess.run(
        [curl, "-sS", "-N", f"{url}/api/sse?message=hi"],
        capture_output=True, timeout=30, check=True,
    ).stdout
    events = parse_all(stream)
    assert next(e.type for e in events) == "meta"
    assert [e.type for e in events][-2:] == ["usage", "done"]
    text = "".join(json.loads(e.data) for e in events if e.type == "message")
    assert "demo provider" in text
    assert text.endswith('You asked: "hi"')


def test_sigterm_exits_cleanly(server_process: tuple[subprocess.Popen[str], str]) -> None:
    process, _ = server_process
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 5
    assert "shutting down" in stderr
    assert "stopped cleanly: no task left running" in stderr
    assert isinstance(process.args, list)
    assert f"event loop: {process.args[-1]}" in stderr


def test_auto_loop_is_uvloop_when_installed() -> None:
    assert importlib.util.find_spec("uvloop") is not None, "uvloop is a dependency"
    assert resolved_loop("auto") == "uvloop"
    assert resolved_loop("asyncio") == "asyncio"


def test_help_lists_every_option_with_its_variable_and_default() -> None:
    result = subprocess.run([sys.executable, "-m", "sseserver", "--help"], cwd=ROOT,
                            env=_env(), capture_output=True, text=True, check=True)
    help_text = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert option.flag in help_text
        assert option.env in help_text
    assert "default: 127.0.0.1" in help_text
    assert "default: claude-sonnet-5-5" in help_text
    assert "ANTHROPIC_API_KEY" in help_text


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "x"], {}, "--port='x'"),
        (["--max-tokens", "0"], {}, "--max-tokens='0'"),
        ([], {"SSESERVER_HEARTBEAT": "-1"}, "SSESERVER_HEARTBEAT='-1'"),
        (["--provider", "anthropic"], {}, "ANTHROPIC_API_KEY"),
        (["--loop", "trio"], {}, "--loop='trio': must be auto, asyncio or uvloop"),
    ],
)
def test_bad_settings_exit_2_naming_the_option(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run([sys.executable, "-m", "sseserver", "--port", "0", *args],
                            cwd=ROOT, env=_env(**env), capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 2
    assert message in result.stderr


def test_deprecated_model_is_warned_about_with_its_end_of_life() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sseserver", "--port", "0",
         "--models", "claude-sonnet-4-5-20250929"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert "claude-sonnet-4-5-20250929" in stderr
    assert "November 30th, 2026" in stderr
