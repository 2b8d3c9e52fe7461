"""The Node relay peer's dependency: Anthropic's TypeScript SDK, from npm, pinned.

bench/peers/node/package.json names the version and package-lock.json every transitive
one; `npm ci` installs exactly those into .cache/node (gitignored), where
bench/peers/node_relay.mjs loads the SDK from. A stamp holding the lock's hash makes a
second install a no-op, and a changed lock a fresh one. `python -m bench.node_sdk` is what
the bench targets and `make node-deps` (so `make test`) run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
PINNED: Final = ROOT / "bench" / "peers" / "node"
CACHE: Final = ROOT / ".cache" / "node"
NODE_RELAY: Final = ROOT / "bench" / "peers" / "node_relay.mjs"
INSTALL_TIMEOUT: Final = 300.0  # seconds: npm fetches 8 small packages


class NodeMissing(RuntimeError):
    """node or npm is not installed (Debian: `apt-get install nodejs npm`)."""


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PINNED / name).read_bytes())
    return digest.hexdigest()


def installed() -> bool:
    stamp = CACHE / ".installed"
    return stamp.exists() and stamp.read_text() == _lock_hash()


def ensure(timeout: float = INSTALL_TIMEOUT) -> Path:
    """Install the pinned SDK into .cache/node unless it is there; returns the folder."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise NodeMissing("node and npm are needed for the Node relay peer: "
                          "run `apt-get install nodejs npm`")
    if installed():
        return CACHE
    if CACHE.exists():
        shutil.rmtree(CACHE)
    CACHE.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PINNED / name, CACHE / name)
    subprocess.run([npm, "ci", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                    "--loglevel=error"], check=True, timeout=timeout)
    (CACHE / ".installed").write_text(_lock_hash())
    return CACHE


def main() -> int:
    try:
        folder = ensure()
    except NodeMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except subprocess.TimeoutExpired:
        print(f"bench: npm ci did not finish in {INSTALL_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    print(f"@anthropic-ai/sdk for the Node relay peer: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
