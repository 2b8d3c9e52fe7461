"""A private redis-server for the tests: Debian's package on a 127.0.0.1 port held for it
(tests/support/ports.py: redis-server cannot bind port 0 and report it), with no persistence,
stopped (and restartable on the same port) by the test that owns it.

A missing redis-server follows the rule of tests/support/system_tools.py: a skip locally, naming
the apt-get line, a failure under CI.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .ports import HeldPort
from .system_tools import REDIS_SERVER, require


def require_redis_server() -> None:
    require(REDIS_SERVER)


class RedisServer:
    def __init__(self) -> None:
        # Held until close(): no other socket takes the port while Redis is down, so a
        # restart finds it free and clients that know the URL reach the same server.
        self._held = HeldPort()
        self.port = self._held.port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="sseserver-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    def start(self, timeout: float = 10.0) -> None:
        assert self._process is None, "already running"
        log = Path(self._dir.name) / "redis.log"
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [REDIS_SERVER.path, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", self._dir.name, "--loglevel", "warning", *self.extra_args()],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.command(b"PING") == b"+PONG\r\n":
                return
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise RuntimeError(f"redis-server exited with {code}: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.02)
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def extra_args(self) -> list[str]:
        """More redis-server options, for a subclass."""
        return []

    @property
    def running(self) -> bool:
        return self._process is not None

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self) -> None:
        self.stop()
        self._held.close()
        self._dir.cleanup()

    def command(self, *args: bytes) -> bytes | None:
        """Send one command in RESP and return the raw reply (None when unreachable)."""
        request = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(request)
                return sock.recv(1 << 16)
        except OSError:
            return None
