"""What the logs may hold: a request's method, path and status, never a secret (the access
token, the API key) nor a user's words (a question travels in the query string, which the
access log leaves out: access_log.py), even at `--log-level debug`. And log integrity:
only the server writes a log line, every request gets exactly one access-log line (an SSE
response when it ends, however it ends), whatever a client sends (docs/operations.md,
"Logs")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
from typing import Final

import aiohttp
import pytest

from .conftest import StartServer
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.http_client import request as http_request
from .support.processes import Processes, ServerProcess, wait_healthy
from .support.raw_http import exchange, host_port, request
from .support.sse_client import open_sse
from .support.waiting import until

TOKEN: Final = "t0ken-for-tests-0123456789abcdef"


async def test_the_token_and_the_key_never_reach_a_log_line(
    start_server: StartServer, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    guarded = await start_server(fake=fake_anthropic, access_token=TOKEN)
    # What `python -m sseserver --log-level debug` logs: our loggers at DEBUG, the SDK's
    # HTTP stack at INFO (its DEBUG lines carry request bodies: configure_logging).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="sseserver")
    fake_anthropic.enqueue(Reply(chunks=["fine"]))
    await http_request("GET", f"{guarded.url}/?token={TOKEN}")
    await http_request("GET", guarded.url + "/?token=wrong-guess-of-the-token")
    await http_request("GET", guarded.url + "/api/sse?message=hi",
                  headers={"Authorization": "Bearer wrong-guess-of-the-token"})
    async with await open_sse(guarded.url + "/api/sse?message=a-private-question",
                              headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
        await stream.read_all()
    assert "generation id=" in caplog.text  # the logs were captured
    for secret in (TOKEN, fake_anthropic.api_key, "wrong-guess", "a-private-question"):
        assert secret not in caplog.text
    assert TOKEN not in repr(guarded.settings)


AUTH: Final = ("Authorization", f"Bearer {TOKEN}".encode())
MESSAGE: Final = "the-users-own-words-7f3a91"
# A line the server wrote: a timestamp, a level, a logger. Anything else on stderr was
# forged by a client (or is a traceback).
SERVER_LINE: Final = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)


async def _stopped_log(server: ServerProcess) -> str:
    """The whole log, once the server has exited (every line flushed)."""
    server.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        assert await server.process.wait() == 0
    return server.log


def _access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " aiohttp.access: " in line]


# (path as sent, how its access-log line shows it)
HOSTILE_PATHS: Final = [
    ("/a%0a127.0.0.1%20%22GET%20/forged%22%20200%201.0ms",
     r'"GET /a\n127.0.0.1 \"GET /forged\" 200 1.0ms"'),
    ("/b%0d%0aforged", r'"GET /b\r\nforged"'),
    ("/c%1b[2J%1b[31mred", r'"GET /c\x1b[2J\x1b[31mred"'),
    ("/d%00e", r'"GET /d\x00e"'),
    ("/e%c2%85f%c2%9b", r'"GET /e\x85f\x9b"'),  # C1 controls: NEL, CSI
    ("/f%e2%80%aeg", r'"GET /f\u202eg"'),  # right-to-left override
    ("/g%ff%fe", '"GET /g%ff%fe"'),  # not UTF-8: left as sent
    ("/h%5c%22i", r'"GET /h\\\"i"'),
    ("/j" + "%0a" * 400, '"GET /j' + r"\n" * 298 + '..."'),  # cut at 300 characters
]


async def test_hostile_paths_give_one_escaped_access_line_each(processes: Processes) -> None:
    """A `%0a` in a URL cannot write a second, made-up access-log line, nor `%1b`, `%00`
    reach the log raw: every line is the server's, in printable ASCII."""
    server = await processes.sseserver(None, "--access-token", TOKEN)
    await wait_healthy(server.url)
    for path, _ in HOSTILE_PATHS:
        answer = await exchange(server.url, request("GET", path))
        assert answer.status == 404
        assert answer.error()["type"] == "not_found_error"
    log = await _stopped_log(server)
    for line in log.splitlines():
        assert SERVER_LINE.match(line), line
        assert line.isascii(), line
        assert line.isprintable(), line
    access = _access_lines(log)
    for _, shown in HOSTILE_PATHS:
        assert len([line for line in access if shown + " 404 " in line]) == 1, (shown, access)
    assert len(access) == len(HOSTILE_PATHS) + len(
        [line for line in access if '"GET /healthz" 200' in line]
    )


async def test_a_forwarded_address_cannot_forge_generation_log_fields(
    processes: Processes,
) -> None:
    """A trusted proxy passes on what the client wrote in X-Forwarded-For. An IPv6 zone
    may hold any text, so `fe80::1%x provider=anthropic ...` put the sender's own fields
    and a raw U+202E in the generation's line: the zone is dropped, every line escaped."""
    server = await processes.sseserver(
        None, "--forwarded-allow-ips", "127.0.0.1", "--demo-delay-ms", "0"
    )
    await wait_healthy(server.url)
    forged = "fe80::1%x provider=anthropic model=forged ended=done \u202eevil"
    answer = await exchange(server.url, request(
        "GET", "/api/sse?message=hi", [("X-Forwarded-For", forged.encode())]
    ))
    assert answer.status == 200
    log = await _stopped_log(server)
    for line in log.splitlines():
        assert SERVER_LINE.match(line), line
        assert line.isascii(), line
        assert line.isprintable(), line
    [generation] = [line for line in log.splitlines() if " generation id=" in line]
    assert " client=fe80::1 user=- provider=demo " in generation, generation
    for field in ("provider=", "model=", "ended="):
        assert generation.count(field) == 1, generation
    assert "evil" not in log
    assert "forged" not in log
    access = _access_lines(log)
    assert any(': fe80::1 "GET /api/sse" 200 ' in line for line in access), access


async def test_neither_message_nor_token_reaches_the_log(processes: Processes) -> None:
    """Every way a client can put them in front of the server, at the default level: a
    GET message over the request-line limit (a JSON 414, not aiohttp's plain-text 400
    quoting the query), the token in a request line the parser refuses, in a header, in a
    wrong guess."""
    server = await processes.sseserver(None, "--access-token", TOKEN, "--demo-delay-ms", "0")
    await wait_healthy(server.url)
    url = server.url
    # The message in a stream request, the normal way and too long for a request line.
    answer = await exchange(url, request("GET", f"/api/sse?message={MESSAGE}", [AUTH]))
    assert answer.status == 200
    long = await exchange(url, request("GET", f"/api/sse?message={MESSAGE * 400}", [AUTH]))
    assert long.status == 414
    assert long.error() == {
        "type": "request_too_large",
        "message": "The request line is longer than 8190 bytes; send long messages with "
                   "POST /api/streams.",
    }
    body = json.dumps({"messages": [{"role": "user", "content": MESSAGE}]}).encode()
    created = await exchange(url, request("POST", "/api/streams",
                                          [AUTH, ("Content-Type", b"application/json")], body))
    assert created.status == 201
    streamed = await exchange(url, request("GET", created.json()["url"], [AUTH]))
    assert streamed.status == 200
    # The message or the token in places the parser or the routes refuse.
    refused = [
        (b"GET /?token=" + TOKEN.encode() + b" HTTP/9.9\r\nHost: t\r\n\r\n", 400),
        (b"GET /api/sse?message=" + MESSAGE.encode() + b" HTTP/1.1\r\nHost: t\r\n"
         b"Authorization: Bearer " + TOKEN.encode() + b"\r\nX-Big: " + b"b" * 9000
         + b"\r\n\r\n", 431),
        (b"GET /api/sse?message=" + MESSAGE.encode() + b"\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET /api/sse?message=" + MESSAGE.encode() + b" HTTP/1.1\r\nHost: t\r\nX-Bad: "
         + TOKEN.encode() + b"\x00\r\n\r\n", 400),
        (request("GET", f"/?token={TOKEN}x"), 303),  # home, whose form says it was wrong
        (request("GET", f"/api/sse?message={MESSAGE}",
                 [("Authorization", f"Bearer {TOKEN}-wrong".encode())]), 401),
        (request("GET", f"/?token={TOKEN}"), 303),
    ]
    for raw, status in refused:
        answer = await exchange(url, raw)
        assert answer.status == status, (raw[:60], answer)
        if status >= 400:
            answer.error()  # JSON, like every refusal
    log = await _stopped_log(server)
    assert MESSAGE not in log
    assert TOKEN not in log
    assert "Traceback" not in log
    assert len(_access_lines(log)) >= 4 + len(refused)


# ---- SSE responses: logged when they end, however they end ----


def _lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


async def _access_lines_after_a_drop(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access lines once the first has come (it is written after the answer, or the
    drop), and a little longer, so a second line for the same request would be seen too."""
    await until(lambda: bool(_lines(caplog, "aiohttp.access")), what="an access-log line")
    await asyncio.sleep(0.1)
    return _lines(caplog, "aiohttp.access")


async def test_a_finished_stream_is_logged_once_with_its_bytes(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(demo_tokens=5)
    caplog.set_level(logging.INFO)
    answer = await exchange(server.url, request("GET", "/api/sse?message=hi"))
    assert answer.status == 200
    access = await _access_lines_after_a_drop(caplog)
    assert len(access) == 1, access
    assert re.fullmatch(
        rf'127\.0\.0\.1 "GET /api/sse" 200 [\d.]+ms sse bytes={len(answer.body)} ended=complete',
        access[0],
    ), access[0]
    generation = _lines(caplog, "sseserver.generations")
    assert len(generation) == 1
    assert " client=127.0.0.1 " in generation[0]


@pytest.mark.parametrize("route", ["/api/sse?message=hi", "STREAM"])
async def test_a_stream_the_client_drops_is_logged_once(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    """A client that disconnects cancels its handler, and aiohttp logs nothing for a
    cancelled handler: the subscriber logs the line itself."""
    server = await start_server(demo_delay_ms=50, demo_tokens=100)
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        if route == "STREAM":
            async with session.post(server.url + "/api/streams",
                                    json={"messages": [{"role": "user", "content": "hi"}]}
                                    ) as response:
                route = (await response.json())["url"]
        caplog.clear()
        async with session.get(server.url + route) as response:
            received = b""
            while received.count(b"event: message") < 3:
                received += await response.content.readany()
            response.connection.transport.abort()  # type: ignore[union-attr]
    path = route.split("?")[0]
    access = await _access_lines_after_a_drop(caplog)
    assert len(access) == 1, access
    match = re.fullmatch(
        rf'127\.0\.0\.1 "GET {re.escape(path)}" 200 [\d.]+ms sse bytes=(\d+) ended=client_gone',
        access[0],
    )
    assert match, access[0]
    assert int(match[1]) >= len(received)


CHAT_BODY: Final = json.dumps({
    "id": "chat-logged", "trigger": "submit-message",
    "messages": [{"id": "m0", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}).encode()


async def test_a_chat_reply_is_logged_once_with_its_bytes(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The AI SDK's chat route is an SSE response too: its line says what it sent and how
    it ended, like ours."""
    server = await start_server(demo_tokens=5)
    caplog.set_level(logging.INFO)
    answer = await exchange(server.url, request(
        "POST", "/api/chat", [("Content-Type", b"application/json")], CHAT_BODY))
    assert answer.status == 200
    assert answer.body.endswith(b"data: [DONE]\n\n")
    access = await _access_lines_after_a_drop(caplog)
    assert len(access) == 1, access
    assert re.fullmatch(
        rf'127\.0\.0\.1 "POST /api/chat" 200 [\d.]+ms sse bytes={len(answer.body)} '
        r"ended=complete",
        access[0],
    ), access[0]


async def test_a_chat_reply_the_client_drops_is_logged_once(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that leaves a chat reply cancels its handler; aiohttp logs nothing for a
    cancelled handler, so the response logs its own line."""
    server = await start_server(demo_delay_ms=50, demo_tokens=100)
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/chat", data=CHAT_BODY, headers={"Content-Type": "application/json"}
    ) as response:
        received = b""
        while received.count(b'"type":"text-delta"') < 3:
            received += await response.content.readany()
        response.connection.transport.abort()  # type: ignore[union-attr]
    access = await _access_lines_after_a_drop(caplog)
    assert len(access) == 1, access
    match = re.fullmatch(
        r'127\.0\.0\.1 "POST /api/chat" 200 [\d.]+ms sse bytes=(\d+) ended=client_gone',
        access[0],
    )
    assert match, access[0]
    assert int(match[1]) >= len(received)


async def test_a_request_dropped_before_its_answer_is_logged_499(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    caplog.set_level(logging.INFO)
    host, port = host_port(server.url)
    _, writer = await asyncio.open_connection(host, port)
    writer.write(request("POST", "/api/streams", [("Content-Type", b"application/json")],
                         b"x" * 1000)[:-500])  # half the body, then gone
    await asyncio.sleep(0.2)
    writer.transport.abort()
    access = await _access_lines_after_a_drop(caplog)
    assert len(access) == 1, access
    assert re.fullmatch(r'127\.0\.0\.1 "POST /api/streams" 499 [\d.]+ms', access[0]), access[0]
    with contextlib.suppress(Exception):
        writer.close()
