"""Streams and chats belong to the user who started them (docs/protocol.md, "Access"):
to another user they answer exactly as a stream that is not held does (404; 204 to a
reconnect), whether the stream lives in this process's memory or in Redis, and across
two server processes on one Redis. A console with `sse:read_any` reads any stream but
stops only its own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartServer
from .support.http_client import Answer
from .support.http_client import request as http
from .support.jwt_issuer import AUDIENCE, SECRET, bearer, claims, hs256, secret_file
from .support.processes import Processes
from .support.sse_client import SSEStream, open_sse

__all__ = ["secret_file"]

ALICE = bearer(hs256(claims("alice")))
BOB = bearer(hs256(claims("bob")))
CONSOLE = bearer(hs256(claims("console", scope="sse:read_any")))
NEVER_HELD = "NeverHeld0123456"
# Long enough to be running while the test looks at it, at the demo's 20 ms a token.
SLOW: dict[str, Any] = {"demo_delay_ms": 20, "demo_tokens": 400, "resume_window": 30}


async def _post(base: str, who: dict[str, str]) -> str:
    status, _, body = await http("POST", base + "/api/streams", headers=who,
                                    json_body={"messages": [{"role": "user", "content": "hi"}]})
    assert status == 201, body
    return str(json.loads(body)["id"])


def _same_as_not_held(theirs: Answer, never: Answer) -> None:
    assert theirs.status == never.status
    assert theirs.body == never.body


async def _as_bob(base: str, stream_id: str) -> None:
    """Every way Bob could reach Alice's stream answers as for a stream never held."""
    for method, path, headers in (
        ("GET", "/api/streams/{}", {}),
        ("GET", "/api/streams/{}", {"Last-Event-ID": "{}:0"}),
        ("GET", "/api/sse?lastEventId={}:1", {}),
        ("DELETE", "/api/streams/{}", {}),
    ):
        theirs, never = [
            await http(method, base + path.format(sid),
                       headers=BOB | {k: v.format(sid) for k, v in headers.items()})
            for sid in (stream_id, NEVER_HELD)
        ]
        assert theirs.status in (404, 204), (method, path, theirs)
        _same_as_not_held(theirs, never)


async def _chat(base: str, who: dict[str, str], chat_id: str) -> SSEStream:
    body = {"id": chat_id, "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    return await open_sse(base + "/api/chat", headers=who, method="POST",
                          body=json.dumps(body).encode())


@pytest.mark.parametrize("backend_name", ["memory", "redis"])
async def test_another_users_stream_and_chat_do_not_exist_for_them(
    start_server: StartServer, request: pytest.FixtureRequest, backend_name: str,
) -> None:
    extra: dict[str, Any] = {}
    if backend_name == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")
    server = await start_server(jwt_secret_file=SECRET, jwt_audience=AUDIENCE, **SLOW, **extra)
    stream_id = await _post(server.url, ALICE)
    async with await open_sse(f"{server.url}/api/streams/{stream_id}", headers=ALICE) as mine:
        await mine.take(3)
        await _as_bob(server.url, stream_id)
        # The console reads it from the start, but cannot stop it.
        async with await open_sse(f"{server.url}/api/streams/{stream_id}",
                                  headers=CONSOLE) as console:
            seen = [e.last_event_id for e in await console.take(3)]
            assert seen == [f"{stream_id}:{i}" for i in range(3)]
        assert (await http("DELETE", f"{server.url}/api/streams/{stream_id}",
                              headers=CONSOLE)).status == 404
        # Alice's reply went on untouched; she stops it herself.
        assert "usage" not in [e.type for e in await mine.take(3)]
        assert (await http("DELETE", f"{server.url}/api/streams/{stream_id}",
                              headers=ALICE)).status == 204
        events = await mine.read_all()
    usage = json.loads(next(e.data for e in events if e.type == "usage"))
    assert usage["stop_reason"] == "cancelled"

    # A chat: Bob cannot resume it, stop it, or take over its id.
    alices = await _chat(server.url, ALICE, "shared-chat-id")
    try:
        await alices.take(3)
        resume = await http("GET", server.url + "/api/chat/shared-chat-id/stream",
                               headers=BOB)
        assert resume.status == 204  # the transport's "no reply to resume"
        stop = await http("DELETE", server.url + "/api/chat/shared-chat-id/stream",
                             headers=BOB)
        assert stop.status == 404
        assert json.loads(stop.body)["error"]["message"] == "This chat has no reply to stop."
        async with await _chat(server.url, BOB, "shared-chat-id") as bobs:
            await bobs.take(3)
            async with await open_sse(server.url + "/api/chat/shared-chat-id/stream",
                                      headers=ALICE) as again:
                await again.take(3)  # still Alice's own reply, not superseded by Bob's
        assert (await http("DELETE", server.url + "/api/chat/shared-chat-id/stream",
                           headers=ALICE)).status == 204
        chunks = [json.loads(e.data) for e in await alices.read_all() if e.data != "[DONE]"]
        assert chunks[-1] == {"type": "abort", "reason": "cancelled"}
    finally:
        await alices.close()


async def test_ownership_holds_across_two_processes_on_redis(
    processes: Processes, some_redis_url: str, secret_file: Path,
) -> None:
    a, b = await asyncio.gather(*(processes.sseserver(
        None, "--redis-url", some_redis_url, "--jwt-secret-file", str(secret_file),
        "--jwt-audience", AUDIENCE,
        "--demo-delay-ms", "20", "--demo-tokens", "400", "--resume-window", "30",
    ) for _ in range(2)))
    stream_id = await _post(a.url, ALICE)
    async with await open_sse(f"{b.url}/api/streams/{stream_id}", headers=ALICE) as mine:
        await mine.take(3)
        await _as_bob(b.url, stream_id)
        await _as_bob(a.url, stream_id)
        async with await open_sse(f"{b.url}/api/streams/{stream_id}",
                                  headers=CONSOLE) as console:
            await console.take(2)
        assert (await http("DELETE", f"{b.url}/api/streams/{stream_id}",
                              headers=ALICE)).status == 204
        events = await mine.read_all()
    assert events[-1].type == "done"
    # A chat started on one process is Alice's on the other too.
    alices = await _chat(a.url, ALICE, "chat-on-a")
    try:
        await alices.take(2)
        assert (await http("GET", b.url + "/api/chat/chat-on-a/stream",
                              headers=BOB)).status == 204
        assert (await http("DELETE", b.url + "/api/chat/chat-on-a/stream",
                              headers=BOB)).status == 404
        async with await open_sse(b.url + "/api/chat/chat-on-a/stream",
                                  headers=ALICE) as again:
            await again.take(2)
        assert (await http("DELETE", b.url + "/api/chat/chat-on-a/stream",
                              headers=ALICE)).status == 204
    finally:
        await alices.close()
