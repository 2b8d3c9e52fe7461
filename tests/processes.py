"""Real server processes for the scale-out tests: `python -m sseserver` (or gunicorn) in a
subprocess, pointed at a fake Anthropic API running in the test's event loop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from .fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent


def server_env(fake: FakeAnthropic | None = None, **extra: str) -> dict[str, str]:
    """This environment without our own or Anthropic's variables, plus `extra`."""
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
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss(self) -> int:
        """Resident memory now, in bytes (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or the OOM killer would."""
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self, timeout: float = 15) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        self._log.close()
        return code


class Processes:
    """Starts servers; stops every one at the end of the test."""

    def __init__(self) -> None:
        self.started: list[ServerProcess] = []

    async def spawn(self, argv: Sequence[str], env: dict[str, str]) -> ServerProcess:
        log = tempfile.NamedTemporaryFile(prefix="sseserver-test-", suffix=".log")  # noqa: SIM115
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
        )
        server = ServerProcess(process, log)
        self.started.append(server)
        return server

    async def sseserver(
        self, fake: FakeAnthropic | None, *args: str, timeout: float = 30,
        open_files: tuple[int, int] | None = None,
    ) -> ServerProcess:
        """`python -m sseserver --port 0 ARGS`, once it has printed its URL; `open_files`:
        the (soft, hard) limit on descriptors it starts with."""
        provider = ["--provider", "anthropic", "--upstream-retries", "0"] if fake else [
            "--provider", "demo"]
        python = [sys.executable]
        if open_files is not None:  # set in the child, which then becomes the server
            python += ["-c", _WITH_OPEN_FILES, *map(str, open_files), sys.executable]
        server = await self.spawn(
            [*python, "-m", "sseserver", "--port", "0", *provider, *args],
            server_env(fake),
        )
        assert server.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = (await server.process.stdout.readline()).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"no URL printed: {line!r}\n{server.log_text()}"
        server.url = match.group(0)
        return server

    async def close(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.started))


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
