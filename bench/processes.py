"""The processes of a bench point: the server under test (sseserver, a `--variant` copy of
it, or a peer), the fake Anthropic API for the relay scenarios, all pinned to a core with
`taskset`, and what the driver reads of them from /proc.

The server runs on core 0 and the load (the loadgen, and the fake upstream) on core 1, so
they never share a core. Every process started here is stopped (SIGTERM, then SIGKILL) when
its block ends, whatever happened in it.

Every server here binds port 0 and prints the URL it listens on, which is read from its log:
a port chosen here and handed over could be taken by another process in between.

A peer is a command in `PEERS`. It is started as `COMMAND --port 0 --demo-delay-ms D
--demo-tokens T`, must listen on a 127.0.0.1 port the kernel picks, print
`listening on http://127.0.0.1:PORT` on stdout once it does (as sseserver does), and serve
`GET /api/sse?message=` with sseserver's events and ids (see `bench/peers/__init__.py`); in
relay scenarios it finds the fake upstream in ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY. A
peer in another language is one more entry (its program and a script: `node-relay` is
`node` running bench/peers/node_relay.mjs, on the SDK `bench.node_sdk` installs).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from . import identity
from .node_sdk import NODE_RELAY
from .scenarios import USERS_STACK, Scenario

ROOT: Final = Path(__file__).resolve().parents[1]
PY: Final = sys.executable
SERVER_CORE: Final = "0"
LOAD_CORE: Final = "1"
# A chunk of the fake upstream's reply: one token-sized text delta.
UPSTREAM_CHUNK: Final = "tok "

PEERS: Final[dict[str, tuple[str, ...]]] = {
    "raw-aiohttp": (PY, "-m", "bench.peers.raw_aiohttp"),
    "aiohttp-sse": (PY, "-m", "bench.peers.aiohttp_sse_server"),
    "sse-starlette": (PY, "-m", "bench.peers.sse_starlette_server"),
    "naive-relay": (PY, "-m", "bench.peers.naive_relay"),
    # Installed by `python -m bench.node_sdk` (the bench targets run it first).
    "node-relay": ("node", str(NODE_RELAY)),
}
# sseserver relays as a production deployment would: thinking, web search and the prompt
# cache allowed (the fake answers with text; a request thinks adaptively unless it says).
RELAY_FEATURES: Final = ("--max-thinking-tokens", "10000", "--web-search", "5",
                         "--prompt-cache", "5m")


def server_argv(stack: str, scenario: Scenario,
                variants: dict[str, Path]) -> tuple[list[str], Path]:
    """The command line and working directory of `stack`'s server for `scenario`, on a port
    the kernel picks (`serving` reads which)."""
    demo = ["--demo-delay-ms", f"{scenario.delay_ms:g}", "--demo-tokens", str(scenario.tokens)]
    if stack == USERS_STACK:
        argv, cwd = server_argv("sseserver", scenario, variants)
        users = ["--jwt-secret-file", str(identity.secret_file()),
                 "--jwt-audience", identity.AUDIENCE, "--max-streams-per-client", "0"]
        return [*argv, *users], cwd
    if stack == "sseserver" or stack in variants:
        # A variant runs on its own venv's Python when it has one (another SDK, say).
        own = variants[stack] / ".venv" / "bin" / "python" if stack in variants else None
        python = str(own) if own is not None and own.exists() else PY
        argv = [python, "-m", "sseserver", "--port", "0"]
        argv += ["--provider", "anthropic", *RELAY_FEATURES] if scenario.upstream else [
            "--provider", "demo"]
        if scenario.tool_calls:
            argv += ["--tools", str(ROOT / "bench" / "tools.json")]
        cwd = variants.get(stack, ROOT)
        return argv + ([] if scenario.upstream else demo) + list(scenario.server_args), cwd
    return [*PEERS[stack], "--port", "0", *demo], ROOT


def load_argv(stack: str) -> list[str]:
    """What the stack's load sends besides the scenario's: a user's token for users."""
    if stack == USERS_STACK:
        return ["-H", f"Authorization: Bearer {identity.token()}"]
    return []


# The line a server prints once it listens: `[sseserver ]listening on URL` (sseserver, the
# peers), or the URL alone (the fake Anthropic API).
URL_LINE: Final = re.compile(rb"^(?:.*listening on )?(http://127\.0\.0\.1:\d+)", re.MULTILINE)


def printed_url(log: Path, offset: int, process: subprocess.Popen[bytes],
                timeout: float = 30.0) -> str:
    """The URL `process` printed to `log` past `offset`, once it has."""
    deadline = time.monotonic() + timeout
    while True:
        with open(log, "rb") as f:
            f.seek(offset)
            found = URL_LINE.search(f.read())
        if found:
            return found.group(1).decode()
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} printed no URL after {timeout}s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def started(argv: list[str], core: str, env: dict[str, str], log: Path,
            cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """A process pinned to `core` (taskset execs it, so its pid is the program's)."""
    with open(log, "ab") as out:
        process = subprocess.Popen(["taskset", "-c", core, *argv], cwd=cwd, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


@contextlib.contextmanager
def serving(argv: list[str], core: str, env: dict[str, str], log: Path,
            cwd: Path = ROOT) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`started`, once the server has printed its URL (it was told `--port 0`): the process
    and that URL."""
    offset = log.stat().st_size if log.exists() else 0
    with started(argv, core, env, log, cwd) as process:
        yield process, printed_url(log, offset, process)


@contextlib.contextmanager
def fake_upstream(scenario: Scenario, env: dict[str, str], log: Path,
                  stats: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """The tests' fake Anthropic API on the load core, serving `scenario`'s reply (after
    its tool calls, timed into `stats` at exit); `env` gains what points a server
    (sseserver's anthropic provider, a relay peer) at it."""
    # Imported here: the fake's module loads pytest and aiohttp, which only relay points need.
    from tests.support.fake_anthropic import DEFAULT_API_KEY

    tools = ["--tool-calls", str(scenario.tool_calls), "--stats-file", str(stats)] \
        if scenario.tool_calls and stats is not None else []
    with serving([PY, "-m", "tests.support.fake_anthropic", "--port", "0",
                  "--chunks", str(scenario.tokens), "--chunk-text", UPSTREAM_CHUNK,
                  "--delay-ms", f"{scenario.delay_ms:g}", *tools],
                 LOAD_CORE, env, log) as (fake, url):
        env |= {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": DEFAULT_API_KEY}
        yield fake


def core_busy() -> dict[str, float]:
    """Seconds each CPU spent in user, nice and system mode, and stolen, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                user, nice, system = (int(v) for v in values[:3])
                out[name] = (user + nice + system) / tick
                out[name + "_steal"] = int(values[7]) / tick
    return out


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile_limit() -> None:
    """10k connections need 10k descriptors in the server: children inherit this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 12000:
        print(f"warning: file descriptor limit {want} is below S4's 10,000 connections "
              "(raise the hard limit: ulimit -Hn)", file=sys.stderr)
