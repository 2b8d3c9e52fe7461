"""Real server processes for the tests: `python -m sseserver` (or gunicorn) in a subprocess,
for what only a real process shows (signals, exit codes, the log, the tasks left at exit,
several processes sharing Redis), pointed at a fake Anthropic API running in the test's
event loop.

The `processes` fixture (registered in conftest.py) starts them and stops every one at the
end of the test. Each process's stderr goes to a file, so a chatty server never blocks on a
full pipe and its log can be read at any time, also after it exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
import pytest

from .fake_anthropic import FakeAnthropic

ROOT: Final = Path(__file__).resolve().parents[2]
SSESERVER: Final = (sys.executable, "-m", "sseserver")
# What a test's servers get at teardown to stop by themselves, in seconds.
TEARDOWN_GRACE: Final = 2.0


def server_env(fake: FakeAnthropic | None = None, **extra: str) -> dict[str, str]:
    """This environment without our own or Anthropic's variables (a developer's settings
    must not change what a test runs), plus the fake's key and URL and `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SSESERVER_", "ANTHROPIC_"))}
    if fake is not None:
        env |= {"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.base_url}
    return env | extra


# argv: soft hard program args...: set RLIMIT_NOFILE, then become the program (same pid).
_WITH_OPEN_FILES = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        self.process = process
        self._log = log
        self.url = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss(self) -> int:
        """Resident memory now, in bytes (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    @property
    def log(self) -> str:
        """Everything the process wrote to stderr so far."""
        return Path(self._log.name).read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or the OOM killer would."""
        if self.process.returncode is None:
            self.process.kill()

    async def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited by itself."""
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as a service manager stops it; SIGKILL after `timeout` seconds."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


def store_options(request: pytest.FixtureRequest, backend: str) -> tuple[str, ...]:
    """The server's options for a test parametrized by store: the test Redis's URL for
    "redis", nothing for "memory"."""
    if backend == "redis":
        return ("--redis-url", request.getfixturevalue("redis_url"))
    return ()


class Processes:
    """Starts servers; stops every one at the end of the test."""

    def __init__(self) -> None:
        self.started: list[ServerProcess] = []
        self._logs: list[IO[bytes]] = []

    async def spawn(self, argv: Sequence[str], env: Mapping[str, str]) -> ServerProcess:
        """Any command (gunicorn, say), stdout piped, stderr to the log."""
        log = tempfile.NamedTemporaryFile(prefix="sseserver-test-", suffix=".log")  # noqa: SIM115
        self._logs.append(log)
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=log,
        )
        server = ServerProcess(process, log)
        self.started.append(server)
        return server

    async def sseserver(
        self, fake: FakeAnthropic | None, *args: str, loop: str | None = None,
        timeout: float = 30, open_files: tuple[int, int] | None = None,
    ) -> ServerProcess:
        """`python -m sseserver --port 0 ARGS`, once it has printed its URL: the anthropic
        provider pointed at `fake`, else the demo; `--loop LOOP` when `loop` is given;
        `open_files`: the (soft, hard) limit on descriptors it starts with."""
        provider = ["--provider", "anthropic", "--upstream-retries", "0"] if fake else [
            "--provider", "demo"]
        loop_flag = ["--loop", loop] if loop is not None else []
        python: list[str] = [SSESERVER[0]]
        if open_files is not None:  # set in the child, which then becomes the server
            python += ["-c", _WITH_OPEN_FILES, *map(str, open_files), SSESERVER[0]]
        server = await self.spawn(
            [*python, *SSESERVER[1:], "--port", "0", *provider, *loop_flag, *args],
            server_env(fake),
        )
        assert server.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = (await server.process.stdout.readline()).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"no URL printed: {line!r}\n{server.log}"
        server.url = match.group(0)
        return server

    async def command(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        """`python -m sseserver ARGS` that exits by itself (`--help`, a refused setting):
        its exit code, stdout and stderr."""
        server = await self.spawn([*SSESERVER, *args], server_env(None, **(env or {})))
        assert server.process.stdout is not None
        async with asyncio.timeout(timeout):
            stdout = await server.process.stdout.read()
            code = await server.process.wait()
        return code, stdout.decode(errors="replace"), server.log

    async def loadgen(self, url: str, *args: str, timeout: float = 180) -> dict[str, Any]:
        """`python -m sseserver.loadgen URL ARGS --json`, run to its end: its report."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sseserver.loadgen", url, *args, "--json",
            cwd=ROOT, env=server_env(None), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert stdout, f"the load generator printed no report: {stderr.decode()[-2000:]}"
        report: dict[str, Any] = json.loads(stdout)
        return report

    async def close(self) -> None:
        await asyncio.gather(*(self._end(server) for server in self.started))
        for log in self._logs:
            log.close()

    @staticmethod
    async def _end(server: ServerProcess) -> None:
        """SIGTERM; then, to a server still finishing its streams after TEARDOWN_GRACE, the
        second signal (it exits at once): a test that checks the graceful path stops its
        server itself."""
        if server.process.returncode is not None:
            return
        server.signal()
        try:
            await server.wait(TEARDOWN_GRACE)
        except TimeoutError:
            await server.stop()


@pytest.fixture
async def processes() -> AsyncIterator[Processes]:
    started = Processes()
    yield started
    await started.close()


async def wait_healthy(url: str, timeout: float = 30) -> None:
    """Poll /healthz until it answers 200."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not become healthy")
            await asyncio.sleep(0.1)


async def gunicorn_url(server: ServerProcess, timeout: float = 60) -> str:
    """The address of a gunicorn started with `--bind 127.0.0.1:0`, from its log
    ("Listening at: URL (pid)"): the kernel picks the port as gunicorn binds it, so no
    other process can take it between a choice and the bind."""
    deadline = time.monotonic() + timeout
    while not (found := re.findall(r"Listening at: (http://127\.0\.0\.1:\d+) ", server.log)):
        assert server.process.returncode is None, server.log
        if time.monotonic() > deadline:
            raise TimeoutError(f"gunicorn printed no address: {server.log[-2000:]}")
        await asyncio.sleep(0.05)
    return str(found[0])
