"""The AI SDK for the tests: Node.js (Debian's `nodejs`) and the pinned `ai` and
`@ai-sdk/react` that `make test` installs into tests/node/node_modules with `npm ci`
(tests/node/package-lock.json pins every package). Without them the tests that need them
follow the rule of system_tools.py: a skip saying what to run, a failure under CI.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Final

from .system_tools import NODE, NPM, missing, require

NODE_DIR: Final = Path(__file__).resolve().parents[1] / "node"
CLIENT: Final = NODE_DIR / "aisdk_client.mjs"
# The versions this suite was written against; package.json pins them exactly.
AI_VERSION: Final = "7.0.173"
AI_REACT_VERSION: Final = "4.0.177"
LINE_LIMIT: Final = 64 * 1024 * 1024


def require_ai_sdk() -> str:
    """The node executable, once the pinned packages are installed; else skip (or fail)."""
    require(NODE, NPM)
    for package, version in (("ai", AI_VERSION), ("@ai-sdk/react", AI_REACT_VERSION)):
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != version:
            missing(f"{package}@{version} is not installed: run `make node-deps` (npm ci "
                    f"--ignore-scripts --prefix {NODE_DIR})")
    return NODE.path


class NodeClient:
    """tests/node/aisdk_client.mjs running one scenario; its output is JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, scenario: str, base_url: str, text: str,
                    body: dict[str, Any] | None = None, files: Path | None = None,
                    bearer: str | None = None) -> NodeClient:
        """`body`: what the transport adds to each request's body (our request options);
        `files`: a JSON file of FileUIParts the message is sent with; `bearer`: a user's
        token, which the transport sends with its `headers` option."""
        node = require_ai_sdk()
        extra = [json.dumps(body)] if body is not None else []
        env = dict(os.environ) | ({"AISDK_FILES": str(files)} if files is not None else {}) \
            | ({"AISDK_BEARER": bearer} if bearer is not None else {})
        process = await asyncio.create_subprocess_exec(
            node, str(CLIENT), scenario, base_url, text, *extra, cwd=NODE_DIR, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,  # a result line holds the messages, data: URLs of files too
        )
        return cls(process)

    async def line(self, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.process.stdout.readline()
        if not raw:
            await self.process.wait()
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the AI SDK client exited {self.process.returncode}: {error}")
        result: dict[str, Any] = json.loads(raw)
        return result

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def run_client(scenario: str, base_url: str, text: str,
                     body: dict[str, Any] | None = None,
                     files: Path | None = None, bearer: str | None = None) -> dict[str, Any]:
    """Run a scenario to its end; its one result line."""
    client = await NodeClient.start(scenario, base_url, text, body, files, bearer)
    try:
        return await client.line()
    finally:
        await client.close()
