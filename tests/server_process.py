"""`python -m sseserver` as a child process of an async test, for what only a real process
shows: signals, exit codes, the tasks left at exit, the process's memory."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any SSESERVER_ or ANTHROPIC_ variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSESERVER_", "ANTHROPIC_"))}
    return env | extra


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.stderr = bytearray()
        assert process.stderr is not None
        self._stderr_reader = asyncio.create_task(self._drain(process.stderr))

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.stderr += chunk

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited and its stderr is read."""
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await self._stderr_reader
        return code

    @property
    def log(self) -> str:
        return self.stderr.decode(errors="replace")


@asynccontextmanager
async def server_process(
    *args: str, fake: FakeAnthropic | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[ServerProcess]:
    """Start `python -m sseserver --port 0 ARGS` (the anthropic provider pointed at `fake`
    when given, else the demo), wait for its URL, and kill it afterwards if still running."""
    extra = dict(env or {})
    if fake is not None:
        extra |= {"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.base_url,
                  "SSESERVER_UPSTREAM_RETRIES": "0"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sseserver", "--port", "0", *args,
        cwd=ROOT, env=clean_env(**extra),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"http://[\d.]+:\d+", line)
        assert match, f"no URL printed: {line!r}"
        server = ServerProcess(process, match.group(0))
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
