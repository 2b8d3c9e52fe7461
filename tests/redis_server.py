"""A private redis-server for the tests: Debian's package on a free 127.0.0.1 port, with no
persistence, stopped (and restartable on the same port) by the test that owns it.

A missing redis-server follows the rule of tests/system_tools.py: a skip locally, naming
the apt-get line, a failure under CI.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time

from .system_tools import REDIS_SERVER, require


def require_redis_server() -> None:
    require(REDIS_SERVER)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="sseserver-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [REDIS_SERVER.path, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", self._dir.name, "--loglevel", "warning", *self.extra_args()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.command(b"PING") == b"+PONG\r\n":
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            time.sleep(0.02)
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def extra_args(self) -> list[str]:
        """More redis-server options, for a subclass."""
        return []

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

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
