"""Every exception sseserver raises on purpose, in one tree:

    SSEServerError
     ├── ConfigError            a setting that cannot be used (names the flag)
     ├── FieldError             an SSE field that would corrupt the stream (sse.py)
     ├── ProviderError          the upstream failed; safe to show a user
     ├── StoreError             the stream store failed
     │    ├── StoreUnavailable  cannot be reached now; the same call may work later
     │    └── StreamLost        the owner's stream was ended or freed by someone else
     ├── SlowSubscriber         a write stayed blocked for --send-timeout
     └── Refused                a request turned away: status, type, label, Retry-After
          ├── BadRequest (400)  ├── Unauthorized (401)   ├── Forbidden (403)
          │                     │    └── TokenRefused: TokenMissing, TokenExpired,
          │                     │        TokenNotYetValid, BadSignature, WrongAudience,
          │                     │        WrongIssuer, InvalidToken (identity.py)
          ├── NotFound (404)    ├── MethodNotAllowed (405)
          ├── RequestTimeout (408)                       ├── TooLarge (413)
          ├── UriTooLong (414)  ├── UnsupportedMediaType (415)
          ├── ClientLimit (429) ├── BudgetExceeded (429)
          ├── HeadersTooLarge (431)                      ├── ServerError (500)
          ├── AtCapacity (503)  ├── ShuttingDown (503)   ├── Overloaded (503)
          ├── BodiesFull (503)  ├── TooManyConnections (503)
          └── StoreDown (503)

A `Refused` carries everything its JSON answer needs (docs/protocol.md, "Errors"), so
guard.py turns any of them into its answer the same way and counts those with a metric
label. This module imports nothing of ours: every layer can raise from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class SSEServerError(Exception):
    """The root: anything sseserver raises on purpose."""


class ConfigError(SSEServerError, ValueError):
    """A setting that cannot be used; the message names the flag and its variable."""


class FieldError(SSEServerError, ValueError):
    """An SSE `event`, `id` or `retry` value that would corrupt the stream."""


class ProviderError(SSEServerError):
    """An upstream failure, already made safe to show a user (no keys, no traces).

    `type` keeps Anthropic's error type where there is one (`overloaded_error`, ...),
    else `upstream_unavailable` or `upstream_timeout` (docs/protocol.md, "Errors").
    `kind` names a transport failure's cause (`refused`, `dns`, `tls`, `timeout`, ...)
    for the log and /healthz; it is not sent.
    """

    def __init__(self, type: str, message: str, *, kind: str | None = None) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.kind = kind


class StoreError(SSEServerError):
    """The stream store failed."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached (or refused the command); try again later."""


class StreamLost(StoreError):
    """append() into a stream that is no longer its owner's: it was ended because the
    owner was taken for dead, or freed (the backend lost its data). Stop generating."""


class SlowSubscriber(SSEServerError):
    """A write stayed blocked for --send-timeout seconds."""


class Refused(SSEServerError):
    """A request turned away with a JSON error; subclasses fix the status and type.

    `label` names the refusal in the `sseserver_refused` metric (None: not counted);
    `retry_after` is the Retry-After header in seconds, for refusals that pass."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "invalid_request_error"
    label: ClassVar[str | None] = None
    retry_after: ClassVar[str | None] = None
    default_message: ClassVar[str] = "The request was refused."

    def __init__(self, message: str | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.headers = dict(headers or {})
        if self.retry_after is not None:
            self.headers.setdefault("Retry-After", self.retry_after)


class BadRequest(Refused):
    pass


class Unauthorized(Refused):
    status = 401
    type = "authentication_error"
    label = "unauthorized"
    default_message = (
        "This server needs its access token: sign in on the page (or open /?token=TOKEN "
        "once in this browser), or send 'Authorization: Bearer TOKEN'."
    )


class TokenRefused(Unauthorized):
    """A user's token (identity.py) was refused; the subclass's type says why, so a
    client knows whether to refresh it, sign in again or fix its configuration."""

    default_message = "The token was refused."


class TokenMissing(TokenRefused):
    type = "token_missing"
    default_message = (
        "This server needs a token: send 'Authorization: Bearer TOKEN', or open "
        "/?token=TOKEN once in this browser."
    )


class TokenExpired(TokenRefused):
    type = "token_expired"
    default_message = "The token has expired."


class TokenNotYetValid(TokenRefused):
    type = "token_not_yet_valid"
    default_message = "The token is not valid yet (nbf)."


class BadSignature(TokenRefused):
    type = "bad_signature"
    default_message = "The token's signature does not verify."


class WrongAudience(TokenRefused):
    type = "wrong_audience"
    default_message = "The token is not meant for this server (aud)."


class WrongIssuer(TokenRefused):
    type = "wrong_issuer"
    default_message = "The token comes from an issuer this server does not trust (iss)."


class InvalidToken(TokenRefused):
    type = "invalid_token"
    default_message = "The token cannot be used here."


class Forbidden(Refused):
    status = 403
    type = "permission_error"


class NotFound(Refused):
    status = 404
    type = "not_found_error"
    default_message = "No such stream."


class MethodNotAllowed(Refused):
    status = 405
    type = "method_not_allowed"


class RequestTimeout(Refused):
    """The client did not send its request body within --request-timeout."""

    status = 408
    type = "timeout_error"
    default_message = "The request body did not arrive in time."


class TooLarge(Refused):
    status = 413
    type = "request_too_large"


class UriTooLong(Refused):
    """The request line is longer than the HTTP parser reads (answered by connections.py)."""

    status = 414
    type = "request_too_large"


class UnsupportedMediaType(Refused):
    status = 415
    type = "unsupported_media_type"


class HeadersTooLarge(Refused):
    """The request's headers are too long, too many or too large together
    (answered by connections.py, before any route)."""

    status = 431
    type = "request_too_large"


class ClientLimit(Refused):
    """This client runs --max-streams-per-client generations already."""

    status = 429
    type = "rate_limit_error"
    label = "client_limit"
    # Seconds to wait: a demo or short reply frees its slot within that.
    retry_after = "5"
    default_message = (
        "You have as many replies running as this server allows; wait for one to end."
    )


class BudgetExceeded(Refused):
    """This user has spent --budget-tokens (or their token's own budget) in this window;
    Retry-After is the window's end, set by whoever raises it (budgets.py)."""

    status = 429
    type = "budget_exceeded"
    label = "budget"
    default_message = "You have used this window's budget of tokens."


class AtCapacity(Refused):
    """--max-streams generations are running already."""

    status = 503
    type = "overloaded_error"
    label = "capacity"
    retry_after = "5"
    default_message = "The server is at capacity; try again shortly."


class BodiesFull(Refused):
    """Taking this body would hold more than --max-body-bytes-total of request bodies."""

    status = 503
    type = "overloaded_error"
    label = "body_memory"
    retry_after = "1"
    default_message = "The server is receiving too many requests at once; try again shortly."


class TooManyConnections(Refused):
    """--max-connections client connections are open already (answered by
    connections.py as the connection is accepted)."""

    status = 503
    type = "overloaded_error"
    label = "connections"
    retry_after = "5"
    default_message = "The server has too many open connections; try again shortly."


class ShuttingDown(Refused):
    """The server is stopping and starts no new generation."""

    status = 503
    type = "overloaded_error"
    label = "shutting_down"
    # Long enough for a restart, or for a balancer to pick another instance.
    retry_after = "2"
    default_message = "The server is shutting down; try again in a moment."


class Overloaded(Refused):
    """The event loop is behind: new work is shed so running streams keep their pace."""

    status = 503
    type = "overloaded_error"
    label = "overload"
    retry_after = "1"
    default_message = "The server is busy; try again in a moment."


class StoreDown(Refused):
    """The stream store did not answer before anything was begun for this request."""

    status = 503
    type = "store_unavailable"
    retry_after = "2"
    default_message = "The stream store is unreachable; try again shortly."


class ServerError(Refused):
    status = 500
    type = "api_error"
    default_message = "Internal server error."
