"""A test identity provider: it signs users' tokens (HS256 with a secret file, RS256 and
ES256 with keys it makes) and serves its JWKS over HTTP on 127.0.0.1, where a test can
rotate the keys, take the JWKS down and count its fetches."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SECRET = b"s" * 16 + b"3cr3t-for-the-test-issuer-only!!"
AUDIENCE = "sseserver-tests"
ISSUER = "https://issuer.test"


@dataclass
class Key:
    """A signing key and its public JWK."""

    kid: str
    alg: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public))
        return jwk | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
        ))


def rsa_key(kid: str) -> Key:
    return Key(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> Key:
    return Key(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def claims(sub: str = "alice", *, lifetime: float = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "aud": AUDIENCE, "iss": ISSUER, "iat": now,
            "exp": now + int(lifetime)} | extra


def hs256(payload: dict[str, Any], secret: bytes = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def signed(key: Key, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


@dataclass
class Jwks:
    """The JWKS endpoint: its keys, whether it answers, and how often it was asked."""

    keys: list[Key] = field(default_factory=list)
    down: bool = False
    fetches: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.down:
            return web.Response(status=503, text="down")
        return web.json_response({"keys": [key.jwk for key in self.keys]})


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    """A JWKS on 127.0.0.1 holding one RSA and one EC key."""
    served = Jwks([rsa_key("rsa-1"), ec_key("ec-1")])
    app = web.Application()
    app.router.add_get("/jwks.json", served.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.url = f"http://127.0.0.1:{runner.addresses[0][1]}/jwks.json"
    yield served
    await runner.cleanup()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt-secret"
    path.write_bytes(SECRET + b"\n")
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
