"""Users: who makes a request, from a JSON Web Token an identity provider signed
(docs/protocol.md, "Access"; docs/operations.md, "Users").

With `--jwt-jwks-url` (RS256, ES256, EdDSA) or `--jwt-secret-file` (HS256), every `/api/`
request and `/metrics` needs a token, and the user is its `sub` (or `--jwt-user-claim`).
The token comes as:

- `Authorization: Bearer TOKEN`: `fetch`, curl, the AI SDK's transport (`headers`);
- the cookie COOKIE_NAME: `EventSource`, which cannot send headers. An app that already
  has users sets it for sseserver's host, or the page is opened once as `/?token=TOKEN`,
  which sets it (HttpOnly, SameSite=Strict, until the token's `exp`) and redirects to `/`,
  so the token leaves the address bar. A token in every `EventSource` URL instead would
  reach browser history, `Referer` headers and every proxy's log, and an `EventSource`
  reconnects with the URL it was given, an expired token included; a cookie the app
  renews is sent fresh on each reconnect.

Verification is PyJWT's (`jwt.decode`): the signature with a key the header's `alg`
must match (the key decides the algorithm: HS256 only with the secret, the others only
with a JWKS key of that type, so `none` and algorithm confusion are refused), `exp`
(required) and `nbf` with LEEWAY, `aud` and `iss` when configured. A token that verified
is remembered (VERIFIED_CACHE, by its exact text, with its `exp`), so a browser's cookie
costs one dict lookup per request, not one signature check.

Keys of a JWKS are fetched at start and again when a token names an unknown `kid`, at most
every JWKS_MIN_REFRESH seconds (config.py): a rotated key is picked up without a restart,
and tokens with made-up key ids cannot make the server hammer the identity provider.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import jwt
from aiohttp import web

from .app_keys import VERIFIER
from .config import Settings
from .errors import (
    BadSignature,
    Forbidden,
    InvalidToken,
    TokenExpired,
    TokenMissing,
    TokenNotYetValid,
    TokenRefused,
    WrongAudience,
    WrongIssuer,
)
from .forwarded import client_secure

log = logging.getLogger("sseserver.identity")

COOKIE_NAME: Final = "sseserver_token"
# Seconds of clock difference between the identity provider and this server forgiven in
# `exp` and `nbf`.
LEEWAY: Final = 30
# Verified tokens remembered; past it the oldest are forgotten first.
VERIFIED_CACHE: Final = 10_000
# The scope (in `scope` or `scp`) that lets an operator's console read any user's stream
# and scrape /metrics.
READ_ANY_SCOPE: Final = "sse:read_any"
# A claim with the user's own budget of tokens per window, over --budget-tokens.
BUDGET_CLAIM: Final = "sse:budget"
# Longest user id kept: it is part of Redis keys and log lines.
MAX_USER_CHARS: Final = 256
JWKS_TIMEOUT: Final = 5.0
JWKS_MAX_BYTES: Final = 1024 * 1024
_ASYMMETRIC: Final = frozenset({"RS256", "ES256", "EdDSA"})


@dataclass(frozen=True, slots=True)
class User:
    """Who a verified token names, and what it grants."""

    id: str
    read_any: bool = False  # READ_ANY_SCOPE: read any stream, scrape /metrics
    budget: int | None = None  # BUDGET_CLAIM: this user's budget, over the default
    expires: float = 0.0  # the token's exp, for the cookie /?token= sets

    @property
    def limit_key(self) -> str:
        """What the per-client limit counts for this user; never an address."""
        return "u:" + self.id


USER: web.RequestKey[User] = web.RequestKey("sseserver_user", User)


def _challenge(refusal: TokenRefused) -> TokenRefused:
    """RFC 6750, 3: no error code when no token came; `invalid_token` otherwise."""
    value = 'Bearer realm="sseserver"'
    if not isinstance(refusal, TokenMissing):
        # The class's own text: a message may quote the token, which the client wrote.
        value += f', error="invalid_token", error_description="{refusal.default_message}"'
    refusal.headers["WWW-Authenticate"] = value
    return refusal


class Verifier:
    """Verifies users' tokens: the keys (a secret, a JWKS) and the claims asked for."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret_file
        self._jwks_url = settings.jwt_jwks_url
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._user_claim = settings.jwt_user_claim
        self._min_refresh = settings.jwks_min_refresh
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._verified: collections.OrderedDict[str, User] = collections.OrderedDict()
        self.fetches = 0  # JWKS fetches tried, for the log and tests

    async def open(self) -> None:
        """Fetch the JWKS once at start, in the background: a server whose identity
        provider is down still starts, and refuses tokens until it answers."""
        if self._jwks_url is not None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=JWKS_TIMEOUT)
            )
            self._fetching = asyncio.create_task(self._fetch(), name="jwks")

    async def close(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def user(self, token: str) -> User:
        """The user a token names, or a TokenRefused saying why not."""
        user = self._verified.get(token)
        if user is not None:
            if time.time() < user.expires + LEEWAY:
                return user
            del self._verified[token]
            raise _challenge(TokenExpired())
        if not token.isascii():  # a JWT is base64url and dots; a header may hold any byte
            raise _challenge(InvalidToken("The token is not a JWT."))
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _challenge(InvalidToken("The token is not a JWT.")) from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif alg in _ASYMMETRIC and self._jwks_url is not None:
            kid = header.get("kid")
            jwk = await self._key(kid if isinstance(kid, str) else None)
            if jwk is None:
                raise _challenge(InvalidToken("The token's signing key (kid) is unknown."))
            if jwk.algorithm_name != alg:
                raise _challenge(InvalidToken("The token's alg does not match its key."))
            key = jwk.key
        else:
            refused = f"Tokens signed with {str(alg)[:20]!r} are not accepted."
            raise _challenge(InvalidToken(refused))
        claims = self._decode(token, key, alg)
        user = self._user(claims)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.popitem(last=False)
        self._verified[token] = user
        return user

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=self._audience, issuer=self._issuer,
                leeway=LEEWAY, options={"require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise _challenge(TokenExpired()) from None
        except jwt.ImmatureSignatureError:
            raise _challenge(TokenNotYetValid()) from None
        except jwt.InvalidSignatureError:
            raise _challenge(BadSignature()) from None
        except jwt.InvalidAudienceError:
            raise _challenge(WrongAudience()) from None
        except jwt.InvalidIssuerError:
            raise _challenge(WrongIssuer()) from None
        except jwt.MissingRequiredClaimError as exc:
            refusal: TokenRefused = {"aud": WrongAudience, "iss": WrongIssuer}.get(
                exc.claim, InvalidToken
            )(f"The token has no {exc.claim!r} claim.")
            raise _challenge(refusal) from None
        except jwt.PyJWTError:
            raise _challenge(InvalidToken()) from None
        return claims

    def _user(self, claims: dict[str, Any]) -> User:
        name = claims.get(self._user_claim)
        if not isinstance(name, str) or not name or len(name) > MAX_USER_CHARS:
            raise _challenge(InvalidToken(
                f"The token's {self._user_claim!r} claim must name the user "
                f"(1 to {MAX_USER_CHARS} characters)."
            ))
        budget = claims.get(BUDGET_CLAIM)
        if budget is not None and (
            not isinstance(budget, int) or isinstance(budget, bool) or budget < 0
        ):
            raise _challenge(InvalidToken(
                f"The token's {BUDGET_CLAIM!r} claim must be a whole number of tokens."
            ))
        scopes = claims.get("scope", "")
        granted = scopes.split() if isinstance(scopes, str) else []
        scp = claims.get("scp", [])
        granted += scp.split() if isinstance(scp, str) else [s for s in scp if isinstance(s, str)]
        return User(name, READ_ANY_SCOPE in granted, budget, float(claims["exp"]))

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        """The JWKS key with this id; the set is fetched again for an unknown one, when the
        last fetch is JWKS_MIN_REFRESH old (one fetch, however many requests wait)."""
        key = self._lookup(kid)
        if key is not None:
            return key
        if self._fetching is None or self._fetching.done():
            if (self._fetched_at is not None
                    and time.monotonic() - self._fetched_at < self._min_refresh):
                return None
            self._fetching = asyncio.create_task(self._fetch(), name="jwks")
        await asyncio.shield(self._fetching)
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        assert self._session is not None
        assert self._jwks_url is not None
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            async with self._session.get(self._jwks_url) as response:
                response.raise_for_status()
                body = await response.content.read(JWKS_MAX_BYTES + 1)
            if len(body) > JWKS_MAX_BYTES:
                raise ValueError(f"larger than {JWKS_MAX_BYTES} bytes")
            keys = {key.key_id: key for key in jwt.PyJWKSet.from_json(body.decode()).keys}
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS %s: could not fetch its keys: %s", self._jwks_url,
                        str(exc) or type(exc).__name__)
            return
        if keys.keys() != self._keys.keys():
            log.info("JWKS %s: %d key(s): %s", self._jwks_url, len(keys),
                     ", ".join(sorted(str(kid) for kid in keys)))
            # A key taken out of the set no longer vouches for the tokens it signed.
            self._verified.clear()
        self._keys = keys


def presented_token(request: web.BaseRequest) -> str | None:
    """The token from `Authorization: Bearer`, else from the cookie."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


async def identify(request: web.Request, verifier: Verifier) -> User:
    """The request's user (also kept as `request[USER]` for the logs), or a refusal:
    401 without a good token; 403 for /metrics without READ_ANY_SCOPE."""
    token = presented_token(request)
    if token is None:
        raise _challenge(TokenMissing())
    user = request[USER] = await verifier.user(token)
    if request.path == "/metrics" and not user.read_any:
        raise Forbidden(f"/metrics needs a token with the {READ_ANY_SCOPE!r} scope.")
    return user


async def require_user(request: web.Request) -> None:
    """A check after guard.check: with users, a protected route (auth.is_protected) needs
    a token naming one. Nothing to do without users."""
    verifier = request.app.get(VERIFIER)
    if verifier is not None and (request.path.startswith("/api/") or request.path == "/metrics"):
        await identify(request, verifier)


def request_user(request: web.BaseRequest) -> User | None:
    """The user `identify` found for this request, if any."""
    return request.get(USER)


async def login(request: web.Request, verifier: Verifier) -> web.Response | None:
    """`GET /?token=JWT`: a redirect to `/` that sets the cookie until the token's `exp`,
    or None when there is no `token` parameter; a refused token is refused here too."""
    token = request.query.get("token")
    if token is None:
        return None
    user = await verifier.user(token)
    response = web.Response(
        status=303,
        headers={"Location": "/", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
    response.set_cookie(
        COOKIE_NAME, token, max_age=max(1, int(user.expires - time.time())), path="/",
        httponly=True, samesite="Strict", secure=client_secure(request),
    )
    return response
