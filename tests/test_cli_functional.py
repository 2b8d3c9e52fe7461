"""`python -m sseserver` as a user starts it: a subprocess, the page, and `curl -N`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import time
from pathlib import Path

import pytest

from sseserver.deprecations import sdk_table
from sseserver.event_loop import resolved_loop
from sseserver.option_table import OPTIONS

from .support.processes import Processes
from .support.sse_parser import parse_all
from .support.system_tools import CURL, require

# `auto` is uvloop (test_auto_loop_is_uvloop_when_installed): every other process test
# runs it, so these also run asyncio's loop.
LOOPS = ["uvloop", "asyncio"]


async def _curl(*args: str) -> bytes:
    """curl's stdout; it must exit 0."""
    curl = await asyncio.create_subprocess_exec(
        CURL.path, "-sS", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        stdout, stderr = await curl.communicate()
    assert curl.returncode == 0, stderr.decode()
    return stdout


@pytest.mark.parametrize("loop", LOOPS)
async def test_server_serves_the_page_and_curl_streams_the_demo(
    processes: Processes, loop: str
) -> None:
    require(CURL)
    server = await processes.sseserver(None, "--demo-delay-ms", "1", loop=loop)
    page = (await _curl("-i", server.url + "/")).decode()
    assert page.startswith("HTTP/1.1 200")
    assert "<title>" in page
    events = parse_all(await _curl("-N", f"{server.url}/api/sse?message=hi"))
    assert next(e.type for e in events) == "meta"
    assert [e.type for e in events][-2:] == ["usage", "done"]
    text = "".join(json.loads(e.data) for e in events if e.type == "message")
    assert "demo provider" in text
    assert text.endswith('You asked: "hi"')


@pytest.mark.parametrize("loop", LOOPS)
async def test_sigterm_exits_cleanly(processes: Processes, loop: str) -> None:
    server = await processes.sseserver(None, "--demo-delay-ms", "1", loop=loop)
    server.signal(signal.SIGTERM)
    started = time.monotonic()
    code = await server.wait(timeout=10)
    assert code == 0, server.log
    assert time.monotonic() - started < 5
    assert "shutting down" in server.log
    assert "stopped cleanly: no task left running" in server.log
    assert f"event loop: {loop}" in server.log


def test_auto_loop_is_uvloop_when_installed() -> None:
    assert importlib.util.find_spec("uvloop") is not None, "uvloop is a dependency"
    assert resolved_loop("auto") == "uvloop"
    assert resolved_loop("asyncio") == "asyncio"


async def test_help_lists_every_option_with_its_variable_and_default(
    processes: Processes,
) -> None:
    code, stdout, _ = await processes.command("--help")
    assert code == 0
    help_text = " ".join(stdout.split())
    for option in OPTIONS:
        assert option.flag in help_text
        assert option.env in help_text
    assert "default: 127.0.0.1" in help_text
    assert "default: claude-sonnet-5-5" in help_text
    assert "ANTHROPIC_API_KEY" in help_text


MCP_TOKEN = "mcp-cli-token-8c1f0e2d"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "x"], {}, "--port='x'"),
        (["--max-tokens", "0"], {}, "--max-tokens='0'"),
        ([], {"SSESERVER_HEARTBEAT": "-1"}, "SSESERVER_HEARTBEAT='-1'"),
        (["--provider", "anthropic"], {}, "ANTHROPIC_API_KEY"),
        (["--loop", "trio"], {}, "--loop='trio': must be auto, asyncio or uvloop"),
        (["--tools", "/nonexistent/tools.json"], {},
         "--tools='/nonexistent/tools.json': cannot be read: No such file or directory"),
        (["--upstream-timeout", "inf"], {},
         "--upstream-timeout='inf': must be more than 0 and finite"),
        (["--tool-search", "on"], {},
         "--tool-search on finds the operator's tools: it needs --tools FILE"),
        ([], {"SSESERVER_CODE_EXECUTION": "maybe"},
         "SSESERVER_CODE_EXECUTION='maybe': must be on or off"),
    ],
)
async def test_bad_settings_exit_2_naming_the_option(
    processes: Processes, args: list[str], env: dict[str, str], message: str
) -> None:
    code, _, stderr = await processes.command("--port", "0", *args, env=env)
    assert code == 2
    assert message in stderr


@pytest.mark.parametrize(("server", "env", "message"), [
    ({"name": "docs", "url": "https://mcp.example.com", "authorization_token": MCP_TOKEN}, {},
     "a token may not be written in the file"),
    ({"name": "docs", "url": "https://mcp.example.com", "token_env": "DOCS_TOKEN"}, {},
     "--mcp-servers: server 'docs': the environment variable DOCS_TOKEN (token_env) is not "
     "set or empty"),
])
async def test_a_bad_mcp_server_exits_2_without_showing_a_token(
    processes: Processes, tmp_path: Path, server: dict[str, str], env: dict[str, str],
    message: str,
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps([server]))
    code, stdout, stderr = await processes.command("--port", "0", "--mcp-servers", str(path),
                                                   env=env)
    assert code == 2
    assert message in stderr
    assert MCP_TOKEN not in stderr + stdout


async def test_deprecated_model_is_warned_about_with_its_end_of_life(
    processes: Processes,
) -> None:
    """Any model the locked SDK lists: the list changes with its releases. An empty list
    means the SDK moved its table, which the warning reads from its private path."""
    table = sdk_table()
    assert table, "the installed SDK lists no deprecated model where sseserver reads them"
    model, end_of_life = next(iter(table.items()))
    server = await processes.sseserver(None, "--models", model)
    assert await server.stop(timeout=10) == 0
    assert f"model {model!r} is deprecated by Anthropic; end of life {end_of_life}" in server.log


async def test_a_port_in_use_is_one_line_naming_it_and_what_to_do(processes: Processes) -> None:
    """Started next to `make run`, the bind fails: the user reads which port and what to do,
    not the errno's wording with a tuple of the address."""
    held = await processes.sseserver(None)
    port = held.url.rsplit(":", 1)[1]
    code, _, stderr = await processes.command("--port", port)
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("sseserver:")]
    assert errors == [
        f"sseserver: port {port} is already in use on 127.0.0.1 (another sseserver, or "
        "`make run`?): stop that process, or pick another port with --port N (--port 0 "
        "picks a free one)"
    ]
    assert "Traceback" not in stderr


async def test_a_secret_on_the_command_line_is_warned_about_and_a_file_is_not(
    processes: Processes, tmp_path: Path
) -> None:
    """Any user of the machine reads a process's arguments with `ps`: the log says so and
    names the way that keeps it out of sight, and never shows the secret."""
    token = "cli-secret-token-0123456789abcdef"
    on_argv = await processes.sseserver(None, "--access-token", token)
    assert await on_argv.stop(timeout=10) == 0
    assert ("--access-token was given on the command line, where any user of this machine "
            "can read it (ps, /proc): use --access-token-file or the variable instead"
            ) in on_argv.log
    assert token not in on_argv.log
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    from_file = await processes.sseserver(None, "--access-token-file", str(token_file))
    assert await from_file.stop(timeout=10) == 0
    assert "command line" not in from_file.log
