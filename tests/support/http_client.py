"""One HTTP request to a test server, read whole, for tests that check an answer's status,
headers and body (streams are read with tests/support/sse_client.py)."""

from __future__ import annotations

from typing import NamedTuple

import aiohttp


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


async def request(
    method: str, url: str, *, headers: dict[str, str] | None = None, json_body: object = None,
    data: bytes | None = None,
) -> Answer:
    """`method url`, redirects not followed (a test sees the 303 itself); `data` is sent as
    it is, for bodies that must not be valid JSON."""
    async with aiohttp.ClientSession() as session, session.request(
        method, url, headers=headers, json=json_body, data=data, allow_redirects=False
    ) as response:
        return Answer(response.status, dict(response.headers), await response.read())
