"""Access control: with `--access-token`, the API needs the token.

What is protected: every route under `/api/` (starting, reading and cancelling generations,
which is what spends the Anthropic key) and `/metrics`. What is not: the page and its static
files, which hold no secret (the key never reaches them), and `/healthz`, which load
balancers probe without credentials and which says only "ok" and a count.

How a client proves it has the token, either way compared in constant time:

- `Authorization: Bearer TOKEN` (scripts, curl, Prometheus' `authorization` setting);
- the cookie that the page's sign-in form sets (`POST /login` with the token in a JSON
  body), or `GET /?token=TOKEN` (browsers: `EventSource` cannot send headers).
  It is HttpOnly (no script reads it) and SameSite=Strict (no other site's page makes the
  browser send it, so no cross-site request forgery), and it holds an HMAC of the token,
  not the token. The answer to `/?token=` is a redirect to `/`, so the token leaves the
  address bar and the history; request logs never hold query strings (access_log.py).
  SameSite does not stop a page of the same site (another port, a sibling subdomain), so a
  request that the cookie alone lets in must also come from this origin: its
  `Sec-Fetch-Site` is `same-origin` or `none`, or, from a browser that sends no
  `Sec-Fetch-Site`, its `Origin` (when sent) is this host (`same_origin`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Final, Literal
from urllib.parse import urlsplit

from aiohttp import web

from .app_keys import SETTINGS
from .errors import BadRequest, Forbidden, NotFound, Unauthorized
from .forwarded import client_secure

COOKIE_NAME: Final = "sseserver_access"
COOKIE_MAX_AGE: Final = 30 * 24 * 3600  # a month; a new token (restart) invalidates it
# Set on the redirect away from `/?token=WRONG`, read and removed by the page it leads to,
# so the page says "wrong token" without the token staying in the address.
WRONG_COOKIE: Final = "sseserver_wrong_token"
_COOKIE_CONTEXT: Final = b"sseserver access cookie v1"


def is_protected(path: str) -> bool:
    return path.startswith("/api/") or path == "/metrics"


def cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def _same(presented: str, expected: str) -> bool:
    # Header values may carry any byte (aiohttp keeps undecodable ones as surrogates).
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )


def presented(request: web.BaseRequest, token: str) -> Literal["bearer", "cookie"] | None:
    """How the request proves it has the token, if it does."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(credentials.strip(), token):
        return "bearer"
    cookie = request.cookies.get(COOKIE_NAME)
    return "cookie" if cookie is not None and _same(cookie, cookie_value(token)) else None


def token_matches(request: web.BaseRequest, token: str) -> bool:
    return presented(request, token) is not None


def same_origin(request: web.BaseRequest) -> bool:
    """Whether a browser sent this request from this server's own origin (or the user
    typed it). Fetch Metadata first: every current browser sends `Sec-Fetch-Site`. Else
    `Origin`, when sent, names this host; a proxy that sets `Host` without the port (as
    nginx's `$host` does) is matched by host name alone."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-origin request: those carry one or the other
    try:
        parts = urlsplit(origin)
        origin_host, origin_name = parts.netloc.lower(), (parts.hostname or "")
    except ValueError:
        return False
    host = request.headers.get("Host", "").lower()
    return origin_host == host or (":" not in host.rpartition("]")[2] and origin_name == host)


def unauthorized(message: str | None = None) -> Unauthorized:
    return Unauthorized(message, headers={"WWW-Authenticate": 'Bearer realm="sseserver"'})


def require_token(request: web.Request) -> None:
    """A check (guard.py) before protected routes: 401 without the token; 403 for the
    cookie sent by a page of another origin (the module's docstring)."""
    token = request.app[SETTINGS].access_token
    if token is None or not is_protected(request.path):
        return
    how = presented(request, token)
    if how is None:
        raise unauthorized()
    if how == "cookie" and not same_origin(request):
        raise Forbidden(
            "The access cookie is accepted only from this server's own page; another "
            "origin must send 'Authorization: Bearer TOKEN'."
        )


# What the page says about access (data-access on <body>): nothing to do, signed in by the
# cookie, needs the token, or was given a wrong one.
Access = Literal["open", "signed-in", "sign-in", "wrong"]
WRONG_TOKEN: Final = "Wrong token: check it and try again."


def access_state(request: web.Request) -> Access:
    token = request.app[SETTINGS].access_token
    if token is None:
        return "open"
    if token_matches(request, token):
        return "signed-in"
    return "wrong" if WRONG_COOKIE in request.cookies else "sign-in"


def sign_in(request: web.Request, body: bytes) -> web.Response:
    """`POST /login` with `{"token": T}`: 204 and the cookie, or a 401 that says the token
    is wrong. The token travels in a body, never in an address or the history."""
    token = request.app[SETTINGS].access_token
    if token is None:
        raise NotFound("This server has no access token: there is nothing to sign in to.")
    try:
        presented = json.loads(body).get("token")
    except (ValueError, AttributeError):
        presented = None
    if not isinstance(presented, str):
        raise BadRequest('The body must be {"token": "..."}.')
    if not _same(presented.strip(), token):
        raise Unauthorized(WRONG_TOKEN)
    response = web.Response(status=204, headers={"Cache-Control": "no-store"})
    _set_cookie(response, request, token)
    return response


def _set_cookie(response: web.Response, request: web.Request, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie_value(token),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        # HTTPS here or at a trusted proxy (forwarded.py): never send it over plain HTTP.
        secure=client_secure(request),
    )


def login_with_query_token(request: web.Request) -> web.Response | None:
    """`GET /?token=T`: a redirect to `/` that sets the cookie (for a wrong token, a mark
    instead, and the page says "wrong token"), or None (serve the page) when there is no
    `token` parameter or no token configured. Either way the token leaves the address."""
    token = request.app[SETTINGS].access_token
    presented = request.query.get("token")
    if token is None or presented is None:
        return None
    response = web.Response(
        status=303,
        headers={"Location": "/", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
    if _same(presented, token):
        _set_cookie(response, request, token)
    else:
        response.set_cookie(WRONG_COOKIE, "1", max_age=60, path="/", httponly=True,
                            samesite="Strict", secure=client_secure(request))
    return response
