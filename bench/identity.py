"""What verifying a user's token costs (identity.py), printed by `make bench` beside S1
with users on and off.

- `cached`: the request path with the key in hand and the token seen before (a browser's
  cookie, a client's bearer token on its next request): `Verifier.user`, one lookup and
  the `exp` check.
- `first`: a token the server has not seen, so its signature is checked (PyJWT's
  `jwt.decode` with the key cached, as the server calls it), per algorithm.

The `sseserver-users` stack of S1 is sseserver with `--jwt-secret-file`, its load sending
`Authorization: Bearer` on every stream (bench/processes.py).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sseserver.config import Settings
from sseserver.identity import LEEWAY, Verifier

SECRET: Final = b"bench-secret-for-sseserver-users-0123456789"
AUDIENCE: Final = "sseserver-bench"
ROUNDS: Final = 20_000


def token(sub: str = "bench", lifetime: int = 86400) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + lifetime},
                      SECRET, algorithm="HS256")


def secret_file() -> Path:
    """The secret, in a file only this user reads, for `--jwt-secret-file`."""
    path = Path(tempfile.gettempdir()) / "sseserver-bench-jwt-secret"
    path.touch(mode=0o600)
    path.write_bytes(SECRET)
    return path


def _per_call(call: Callable[[], object], rounds: int) -> float:
    """Median of five runs, in microseconds per call."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        runs.append((time.perf_counter() - started) / rounds * 1e6)
    return sorted(runs)[2]


def _decoding(signed: str, key: Any, alg: str) -> Callable[[], object]:
    """One verification as the server makes it (identity.py, `Verifier._decode`)."""
    def decode() -> object:
        return jwt.decode(signed, key, algorithms=[alg], audience=AUDIENCE, leeway=LEEWAY,
                          options={"require": ["exp"]})
    return decode


def measure() -> dict[str, float]:
    """Microseconds per verification: cached, then a first sight per algorithm."""
    verifier = Verifier(Settings(jwt_secret_file=SECRET, jwt_audience=AUDIENCE))
    seen = token()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(verifier.user(seen))

        def cached() -> None:
            coroutine = verifier.user(seen)
            try:
                coroutine.send(None)  # it completes without suspending: a cache hit
            except StopIteration:
                return
            raise AssertionError("a cached token had to wait")

        figures = {"cached": _per_call(cached, ROUNDS)}
    finally:
        loop.close()
    keys: dict[str, tuple[Any, Any]] = {"HS256": (SECRET, SECRET)}
    for alg, private in (("RS256", rsa.generate_private_key(public_exponent=65537,
                                                           key_size=2048)),
                         ("ES256", ec.generate_private_key(ec.SECP256R1())),
                         ("EdDSA", ed25519.Ed25519PrivateKey.generate())):
        keys[alg] = (private, private.public_key())
    now = int(time.time())
    for alg, (signing, verifying) in keys.items():
        signed = jwt.encode({"sub": "bench", "aud": AUDIENCE, "exp": now + 3600}, signing,
                            algorithm=alg)
        figures[f"first {alg}"] = _per_call(_decoding(signed, verifying, alg), 2000)
    return figures


def report() -> str:
    figures = measure()
    lines = ["token verification, µs per request (key cached):"]
    lines += [f"  {name:<12} {value:8.1f}" for name, value in figures.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
