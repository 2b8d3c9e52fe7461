"""One streaming request to the Messages API (`POST /v1/messages`), sent on aiohttp.

The relay builds the request itself rather than through the SDK's builder. The SDK spends
about half a millisecond of CPU on each request (parsing the URL, merging headers, its
httpx request model, a tracing span, a deep copy of the body to look for files), and a
tool loop pays that on every continuation, while every other reply waits behind it. This
sends the same JSON with the API's headers on one pooled aiohttp session, for a fifth of
that, and keeps what the SDK did for a request (docs/performance.md, "What limits the
rest"):

- retries before the first byte: a failed connection, `408`, `409`, `429` and `5xx`, unless
  the answer's `x-should-retry` says otherwise; the wait is the answer's `retry-after-ms`
  or `retry-after` (seconds or an HTTP date) when it gives one up to a minute, else 0.5 s
  doubling up to 8 s, less up to a quarter at random;
- an error answer's own type and message (`UpstreamStatusError`);
- the timeouts: connecting within `connect_timeout`, and each socket read (the answer's
  headers and every read of its body) within `read_timeout`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp
from multidict import CIMultiDictProxy

API_VERSION: Final = "2023-06-01"
DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
# A server's own wait is honoured up to this long; a longer one gets the backoff instead.
MAX_RETRY_AFTER: Final = 60.0
# Of an error answer's body, this much is read for its type and message.
MAX_ERROR_BODY: Final = 64 * 1024
RETRIED_STATUSES: Final = frozenset({408, 409, 429})
# Base64 strings at least this long are spliced into the request's JSON as they are.
BLOB_CHARS: Final = 64 * 1024
# What a failed attempt raises before any answer: retried, then passed on as it is.
CONNECTION_ERRORS: Final = (aiohttp.ClientError, OSError, TimeoutError)


def request_body(params: Mapping[str, Any]) -> bytes:
    """`params` as compact UTF-8 JSON. An attachment's base64 `data` (checked to be the
    standard alphabet: nothing in it needs escaping) is spliced in as it is, not passed
    through the encoder, which would spend tens of milliseconds of the loop on each
    megabytes-long string."""
    blobs: list[str] = []
    marker = f"sseserver-blob-{secrets.token_hex(8)}-"

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            data = value.get("data")
            if (value.get("type") == "base64" and isinstance(data, str)
                    and len(data) >= BLOB_CHARS):
                blobs.append(data)
                return {**value, "data": f"{marker}{len(blobs) - 1}"}
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    skeleton = swap(params) if _holds_blob(params) else params
    encoded = json.dumps(
        skeleton, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
    ).encode()
    if not blobs:
        return encoded
    head, *rest = encoded.split(f'"{marker}'.encode())
    pieces = [head]
    for piece in rest:
        end = piece.index(b'"')
        pieces += [b'"', blobs[int(piece[:end])].encode("ascii"), piece[end:]]
    return b"".join(pieces)


def _holds_blob(params: Mapping[str, Any]) -> bool:
    """Whether a message holds base64 data long enough to splice: in an image or a
    document, or an image in a tool result (where content.py lets base64 be)."""
    for message in params.get("messages", ()):
        content = message.get("content")
        if isinstance(content, str):
            continue
        for block in content:
            inner = block.get("content")
            for part in (block, *(inner if isinstance(inner, list) else ())):
                source = part.get("source")
                if (isinstance(source, dict) and source.get("type") == "base64"
                        and len(source.get("data") or "") >= BLOB_CHARS):
                    return True
    return False


class UpstreamStatusError(Exception):
    """The API answered with an error status: its status, and the error's type and message
    from the body (`None` when the body names none)."""

    def __init__(self, status: int, error_type: str | None, message: str | None) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.error_type = error_type
        self.message = message


class MessagesAPI:
    def __init__(
        self, api_key: str, base_url: str | None, *, max_retries: int,
        connect_timeout: float, read_timeout: float,
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._url = f"{self.base_url}/v1/messages"
        self._headers: Final = {
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "application/json",
        }
        self._max_retries = max_retries
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None

    def _pooled(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            # No pool limit: the server's own stream limits bound the upstream requests.
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=5),
                timeout=self._timeout,
            )
        return session

    def _headers_with(self, betas: Sequence[str]) -> Mapping[str, str]:
        if not betas:
            return self._headers
        return {**self._headers, "anthropic-beta": ",".join(betas)}

    @asynccontextmanager
    async def stream(
        self, params: Mapping[str, Any], betas: Sequence[str] = (),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to a streaming request of `params`, once its status is a success;
        leaving the block closes the response, and with it the upstream connection if the
        body was not read to its end. `betas` go in one `anthropic-beta` header."""
        body = request_body({**params, "stream": True})
        session = self._pooled()
        headers = self._headers_with(betas)
        attempt = 0
        while True:
            try:
                response = await session.post(self._url, data=body, headers=headers)
            except CONNECTION_ERRORS:
                if attempt == self._max_retries:
                    raise
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
                continue
            if response.status < 400:
                break
            async with response:
                error = await _status_error(response)
                retry = attempt < self._max_retries and _should_retry(response)
                wait = _retry_after(response.headers) if retry else None
            if not retry:
                raise error
            await asyncio.sleep(_backoff(attempt) if wait is None else wait)
            attempt += 1
        async with response:
            yield response

    async def get_json(
        self, path: str, betas: Sequence[str] = (), timeout: float = 5.0,
    ) -> Any:
        """`GET {base}{path}`'s JSON body (the Models and Files APIs' metadata), within
        `timeout` seconds in all, without retries: a caller that cannot have it goes on
        without. Raises UpstreamStatusError for an error status, and the transport's
        errors (CONNECTION_ERRORS) as they are."""
        async with self._pooled().get(
            f"{self.base_url}{path}", headers=self._headers_with(betas),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status >= 400:
                raise await _status_error(response)
            return await response.json(content_type=None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _status_error(response: aiohttp.ClientResponse) -> UpstreamStatusError:
    """The error an answer names in its body (`{"type": "error", "error": {"type",
    "message"}}`), or none when the body is not that."""
    raw = b""
    try:
        while len(raw) < MAX_ERROR_BODY:
            chunk = await response.content.read(MAX_ERROR_BODY - len(raw))
            if not chunk:
                break
            raw += chunk
        error = json.loads(raw).get("error")
    except (TimeoutError, aiohttp.ClientError, ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return UpstreamStatusError(response.status, None, None)
    error_type, message = error.get("type"), error.get("message")
    return UpstreamStatusError(
        response.status,
        error_type if isinstance(error_type, str) else None,
        message if isinstance(message, str) else None,
    )


def _should_retry(response: aiohttp.ClientResponse) -> bool:
    should = response.headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    return response.status in RETRIED_STATUSES or response.status >= 500


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    """The wait an answer asks for, in seconds, when it asks for one within a minute."""
    wait: float | None = None
    try:
        wait = float(headers.get("retry-after-ms", "")) / 1000
    except ValueError:
        value = headers.get("retry-after", "")
        try:
            wait = float(value)
        except ValueError:
            date = email.utils.parsedate_tz(value)
            if date is not None:
                wait = email.utils.mktime_tz(date) - time.time()
    return wait if wait is not None and 0 < wait <= MAX_RETRY_AFTER else None


def _backoff(attempt: int) -> float:
    return min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY) * (1 - 0.25 * random.random())
