"""The system tools some tests need, and the one rule for a missing one.

Chromium, redis-server, nginx, openssl, curl, iproute2 (`ip`, `tc`) and Node.js with npm
(`nodejs`, `npm`, for the AI SDK's own client) are Debian packages that
`make test` installs when they are missing and it runs as root (`make system-deps`). A test
that needs one asks :func:`require` first. When the tool is missing, the test skips locally,
naming the exact `apt-get install` line to run; under CI (`CI` set) it fails instead, since
CI must run every test: a skip there would hide a missing install step. Root, which the
half-open test needs for a network namespace, follows the same rule (:func:`require_root`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Final, NoReturn

import pytest


@dataclass(frozen=True)
class Tool:
    command: str
    debian_path: str
    """Where Debian's package installs it: tried first, and also found when its directory
    (/usr/sbin for nginx and tc) is not on a non-root user's PATH."""
    package: str

    def find(self) -> str | None:
        if os.access(self.debian_path, os.X_OK):
            return self.debian_path
        return shutil.which(self.command)

    @property
    def path(self) -> str:
        """Where it is, for a test that has called :func:`require` (else Debian's path,
        so that running it fails naming that path)."""
        return self.find() or self.debian_path


CHROMIUM: Final = Tool("chromium", "/usr/bin/chromium", "chromium")
REDIS_SERVER: Final = Tool("redis-server", "/usr/bin/redis-server", "redis-server")
REDIS_CLI: Final = Tool("redis-cli", "/usr/bin/redis-cli", "redis-tools")
NGINX: Final = Tool("nginx", "/usr/sbin/nginx", "nginx")
OPENSSL: Final = Tool("openssl", "/usr/bin/openssl", "openssl")
CURL: Final = Tool("curl", "/usr/bin/curl", "curl")
IP: Final = Tool("ip", "/usr/sbin/ip", "iproute2")
TC: Final = Tool("tc", "/usr/sbin/tc", "iproute2")
NODE: Final = Tool("node", "/usr/bin/node", "nodejs")
NPM: Final = Tool("npm", "/usr/bin/npm", "npm")


def install_line(*packages: str) -> str:
    """The command that installs `packages` on Debian, as this user would type it."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {' '.join(dict.fromkeys(packages))}"


def missing(message: str) -> NoReturn:
    """Skip the test, or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI runs every test)", pytrace=False)
    pytest.skip(message)


def require(*tools: Tool) -> None:
    """Go on only when every tool is installed (see the module docstring for the rule)."""
    absent = [tool for tool in tools if tool.find() is None]
    if absent:
        names = ", ".join(tool.command for tool in absent)
        verb = "is" if len(absent) == 1 else "are"
        line = install_line(*(tool.package for tool in absent))
        missing(f"{names} {verb} missing: run `{line}`")


def require_root(why: str) -> None:
    """Go on only as root; `why` says what for."""
    if os.geteuid() != 0:
        missing(f"{why} needs root: run the tests as root (`sudo make test`)")
