"""HTTP over a raw socket, for what a well-behaved client would never send: oversized or
unfinished heads, bytes that are not UTF-8, bodies that contradict their headers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)

    def error(self) -> dict[str, str]:
        """The JSON error's {"type", "message"}, checked for shape."""
        error = self.json()["error"]
        assert set(error) == {"type", "message"}, error
        assert isinstance(error["type"], str)
        assert isinstance(error["message"], str)
        assert error["message"]
        return dict(error)


def parse_answer(raw: bytes) -> RawAnswer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    pairs = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return RawAnswer(status, headers, body)


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def exchange(url: str, request: bytes, timeout: float = 10) -> RawAnswer:
    """Send `request`, read until the server closes, parse the answer."""
    host, port = host_port(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        async with asyncio.timeout(timeout):
            raw = await reader.read()
    finally:
        writer.close()
    assert raw, "the server closed without answering"
    return parse_answer(raw)


def request(method: str, target: str, headers: list[tuple[str, bytes]] | None = None,
            body: bytes = b"", *, close: bool = True) -> bytes:
    """A request's bytes: Host, Connection: close and Content-Length are added."""
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: test"]
    if close:
        lines.append(b"Connection: close")
    lines += [name.encode() + b": " + value for name, value in headers or []]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
