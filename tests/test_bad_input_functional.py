"""Every input the API refuses (docs/protocol.md, "Requests") gets its status and a JSON
error, and changes nothing: no generation starts, no upstream request is made, the server
stays healthy. Each rule's exact status and message: tests/test_validation.py."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic, Reply


async def _request(
    server: RunningServer,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(
        method, server.url + path, data=body, headers=headers
    ) as response:
        return response.status, dict(response.headers), await response.read()


def _assert_json_error(status: int, headers: dict[str, str], body: bytes, want: int,
                       error_type: str) -> None:
    assert status == want, body
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["type"] == error_type
    assert isinstance(error["message"], str)
    assert error["message"]


async def _assert_nothing_changed(server: RunningServer, fake: FakeAnthropic) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/healthz"
    ) as response:
        health = await response.json()
    assert health["status"] == "ok"
    assert health["active_streams"] == 0
    assert fake.requests == []


@pytest.fixture
async def server(start_server: StartServer, fake_anthropic: FakeAnthropic) -> RunningServer:
    return await start_server(
        fake=fake_anthropic, max_tokens=1000, max_message_chars=100, max_body_bytes=4096,
        models=("claude-sonnet-5-5", "claude-haiku-5-5"),
    )


SSE_QUERIES = [
    pytest.param("", 400, "invalid_request_error", id="no-message"),
    pytest.param("?message=", 400, "invalid_request_error", id="empty-message"),
    pytest.param("?message=%20%0A%09", 400, "invalid_request_error", id="blank-message"),
    pytest.param("?message=" + "x" * 101, 413, "request_too_large", id="message-too-long"),
    pytest.param("?message=hi&system=" + "s" * 101, 413, "request_too_large", id="system-long"),
    pytest.param("?message=hi&max_tokens=0", 400, "invalid_request_error", id="max-tokens-0"),
    pytest.param("?message=hi&max_tokens=-1", 400, "invalid_request_error", id="max-tokens-neg"),
    pytest.param("?message=hi&max_tokens=1001", 400, "invalid_request_error",
                 id="max-tokens-over-limit-not-clamped"),
    pytest.param("?message=hi&max_tokens=1.5", 400, "invalid_request_error", id="max-tokens-1.5"),
    pytest.param("?message=hi&max_tokens=abc", 400, "invalid_request_error", id="max-tokens-abc"),
    pytest.param("?message=hi&max_tokens=", 400, "invalid_request_error", id="max-tokens-empty"),
    pytest.param("?message=hi&max_tokens=%EF%BC%95", 400, "invalid_request_error",
                 id="max-tokens-fullwidth-digit"),
    pytest.param("?message=hi&max_tokens=99999999999999999999", 400, "invalid_request_error",
                 id="max-tokens-huge"),
    pytest.param("?message=hi&model=claude-opus-5", 400, "invalid_request_error",
                 id="model-not-allowed"),
    pytest.param("?message=hi&lastEventId=garbage", 400, "invalid_request_error",
                 id="garbage-last-event-id"),
]


@pytest.mark.parametrize(("query", "status", "error_type"), SSE_QUERIES)
async def test_api_sse_refuses(
    server: RunningServer, fake_anthropic: FakeAnthropic, query: str, status: int,
    error_type: str,
) -> None:
    got = await _request(server, "GET", "/api/sse" + query)
    _assert_json_error(*got, status, error_type)
    await _assert_nothing_changed(server, fake_anthropic)


@pytest.mark.parametrize("header", ["nonsense", "abc:", ":5", "a b:1", "x:1:y", "s:-1", "s:1e3"])
async def test_garbage_last_event_id_header_is_refused(
    server: RunningServer, fake_anthropic: FakeAnthropic, header: str
) -> None:
    got = await _request(server, "GET", "/api/sse?message=hi",
                         headers={"Last-Event-ID": header})
    _assert_json_error(*got, 400, "invalid_request_error")
    await _assert_nothing_changed(server, fake_anthropic)


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


USER = {"role": "user", "content": "hi"}
ASSISTANT = {"role": "assistant", "content": "hello"}

POST_BODIES = [
    pytest.param(b"{not json", 400, "invalid_request_error", id="bad-json"),
    pytest.param(b"\xff\xfe{}", 400, "invalid_request_error", id="not-utf8"),
    pytest.param(b"[]", 400, "invalid_request_error", id="not-an-object"),
    pytest.param(b"", 400, "invalid_request_error", id="empty-body"),
    pytest.param(_body(), 400, "invalid_request_error", id="no-messages"),
    pytest.param(_body(messages=[]), 400, "invalid_request_error", id="empty-messages"),
    pytest.param(_body(messages="hi"), 400, "invalid_request_error", id="messages-not-list"),
    pytest.param(_body(messages=[ASSISTANT]), 400, "invalid_request_error",
                 id="starts-with-assistant"),
    pytest.param(_body(messages=[USER, USER]), 400, "invalid_request_error", id="two-users"),
    pytest.param(_body(messages=[USER, ASSISTANT, ASSISTANT]), 400, "invalid_request_error",
                 id="two-assistants"),
    pytest.param(_body(messages=[{"role": "system", "content": "x"}]), 400,
                 "invalid_request_error", id="bad-role"),
    pytest.param(_body(messages=[{"role": "user", "content": ""}]), 400,
                 "invalid_request_error", id="empty-content"),
    pytest.param(_body(messages=[{"role": "user", "content": "  \n"}]), 400,
                 "invalid_request_error", id="blank-content"),
    pytest.param(_body(messages=[{"role": "user", "content": ["block"]}]), 400,
                 "invalid_request_error", id="content-not-string"),
    pytest.param(_body(messages=[{"role": "user"}]), 400, "invalid_request_error",
                 id="no-content"),
    pytest.param(_body(messages=[{"role": "user", "content": "x", "extra": 1}]), 400,
                 "invalid_request_error", id="extra-message-field"),
    pytest.param(_body(messages=[USER], temperature=1), 400, "invalid_request_error",
                 id="unknown-field"),
    pytest.param(_body(messages=[USER], max_tokens="5"), 400, "invalid_request_error",
                 id="max-tokens-string"),
    pytest.param(_body(messages=[USER], max_tokens=True), 400, "invalid_request_error",
                 id="max-tokens-bool"),
    pytest.param(_body(messages=[USER], max_tokens=5.0), 400, "invalid_request_error",
                 id="max-tokens-float"),
    pytest.param(_body(messages=[USER], max_tokens=0), 400, "invalid_request_error",
                 id="max-tokens-0"),
    pytest.param(_body(messages=[USER], max_tokens=1001), 400, "invalid_request_error",
                 id="max-tokens-over"),
    pytest.param(_body(messages=[USER], model="gpt-5"), 400, "invalid_request_error",
                 id="unknown-model"),
    pytest.param(_body(messages=[USER], model=["claude-sonnet-5-5"]), 400,
                 "invalid_request_error", id="model-not-string"),
    pytest.param(_body(messages=[USER], system=5), 400, "invalid_request_error",
                 id="system-not-string"),
    pytest.param(_body(messages=[{"role": "user", "content": "x" * 101}]), 413,
                 "request_too_large", id="content-too-long"),
    pytest.param(_body(messages=[USER], system="s" * 101), 413, "request_too_large",
                 id="system-too-long"),
    pytest.param(_body(messages=[USER] + [ASSISTANT, USER] * 60), 413, "request_too_large",
                 id="body-too-large"),
]


@pytest.mark.parametrize(("body", "status", "error_type"), POST_BODIES)
async def test_post_streams_refuses(
    server: RunningServer, fake_anthropic: FakeAnthropic, body: bytes, status: int,
    error_type: str,
) -> None:
    got = await _request(server, "POST", "/api/streams", body=body,
                         headers={"Content-Type": "application/json"})
    _assert_json_error(*got, status, error_type)
    await _assert_nothing_changed(server, fake_anthropic)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_post_streams_requires_json_content_type(
    server: RunningServer, fake_anthropic: FakeAnthropic, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    got = await _request(server, "POST", "/api/streams", body=_body(messages=[USER]),
                         headers=headers)
    _assert_json_error(*got, 415, "unsupported_media_type")
    await _assert_nothing_changed(server, fake_anthropic)


async def test_a_json_content_type_in_capitals_is_accepted(
    server: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    """A media type is case-insensitive (RFC 9110, 8.3.1): `APPLICATION/JSON` is JSON and
    starts a stream, as protocol.md's "Requests" says."""
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    status, _, body = await _request(server, "POST", "/api/streams", body=_body(messages=[USER]),
                                     headers={"Content-Type": "APPLICATION/JSON"})
    assert status == 201, body
    assert json.loads(body)["url"].startswith("/api/streams/")


@pytest.mark.parametrize(("last_event_id", "message"), [
    pytest.param("garbage", "Last-Event-ID is not an event id of this server.", id="garbage"),
    pytest.param("other:3", "Last-Event-ID names another stream.", id="other-stream"),
])
async def test_a_resume_point_that_cannot_resume_this_stream_says_why(
    server: RunningServer, fake_anthropic: FakeAnthropic, last_event_id: str, message: str
) -> None:
    """The two 400s of a stream's resume point are told apart by their message
    (protocol.md, "Ids and resume")."""
    status, headers, body = await _request(server, "GET", "/api/streams/abc",
                                           headers={"Last-Event-ID": last_event_id})
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"error": {"type": "invalid_request_error", "message": message}}
    await _assert_nothing_changed(server, fake_anthropic)


async def test_assistant_prefill_and_multi_turn_are_accepted(
    server: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    """The refusals above are not over-eager: a valid three-turn body is accepted."""
    fake_anthropic.enqueue(Reply(chunks=["ok"]))
    status, _, body = await _request(
        server, "POST", "/api/streams",
        body=_body(messages=[USER, ASSISTANT, USER], model="claude-haiku-5-5", max_tokens=1000,
                   system="Be brief."),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 201
    url = json.loads(body)["url"]
    assert url.startswith("/api/streams/")
    status, _, _ = await _request(server, "GET", url)  # its first subscriber calls upstream
    assert status == 200
    await fake_anthropic.wait_requests(1)


STREAM_ROUTES = [
    pytest.param("GET", "/api/streams/doesnotexist", {}, 404, "not_found_error", id="get-unknown"),
    pytest.param("DELETE", "/api/streams/doesnotexist", {}, 404, "not_found_error",
                 id="delete-unknown"),
    pytest.param("GET", "/api/streams/bad%20id!", {}, 404, "not_found_error", id="get-bad-id"),
    pytest.param("GET", "/api/streams/" + "a" * 65, {}, 404, "not_found_error", id="get-long-id"),
    pytest.param("GET", "/api/streams/abc", {"Last-Event-ID": "garbage"}, 400,
                 "invalid_request_error", id="get-garbage-last-event-id"),
    pytest.param("GET", "/api/streams/abc", {"Last-Event-ID": "other:3"}, 400,
                 "invalid_request_error", id="get-last-event-id-of-other-stream"),
    pytest.param("PUT", "/api/sse", {}, 405, "method_not_allowed", id="put-sse"),
    pytest.param("POST", "/api/sse", {}, 405, "method_not_allowed", id="post-sse"),
    pytest.param("GET", "/api/streams", {}, 405, "method_not_allowed", id="get-streams"),
    pytest.param("PATCH", "/api/streams/abc", {}, 405, "method_not_allowed", id="patch-stream"),
    pytest.param("POST", "/healthz", {}, 405, "method_not_allowed", id="post-healthz"),
    pytest.param("GET", "/nope", {}, 404, "not_found_error", id="unknown-route"),
    pytest.param("GET", "/static/nope.js", {}, 404, "not_found_error", id="unknown-static"),
    pytest.param("GET", "/static/../pyproject.toml", {}, 404, "not_found_error",
                 id="static-traversal"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "error_type"), STREAM_ROUTES)
async def test_routes_refuse(
    server: RunningServer, fake_anthropic: FakeAnthropic, method: str, path: str,
    headers: dict[str, str], status: int, error_type: str,
) -> None:
    got = await _request(server, method, path, headers=headers)
    _assert_json_error(*got, status, error_type)
    await _assert_nothing_changed(server, fake_anthropic)


@pytest.mark.parametrize("path", ["/api/sse?message=hi", "/api/streams/abc"])
async def test_head_on_a_stream_route_is_405_and_starts_nothing(
    server: RunningServer, fake_anthropic: FakeAnthropic, path: str
) -> None:
    status, headers, body = await _request(server, "HEAD", path)
    assert (status, body) == (405, b"")  # a HEAD answer has no body, by definition
    assert headers["Content-Type"].startswith("application/json")
    await _assert_nothing_changed(server, fake_anthropic)


async def test_reconnect_naming_an_unknown_stream_gets_204(
    server: RunningServer, fake_anthropic: FakeAnthropic
) -> None:
    """A reconnect never starts a second generation: 204 tells EventSource to stop."""
    for path in ("/api/sse?message=hi", "/api/streams/gone"):
        status, _, body = await _request(server, "GET", path,
                                         headers={"Last-Event-ID": "gone:4"})
        assert (status, body) == (204, b"")
    status, _, _ = await _request(server, "GET", "/api/sse?lastEventId=gone:4")
    assert status == 204
    await _assert_nothing_changed(server, fake_anthropic)


@pytest.mark.parametrize("encoding", ["foo", "compress", "gzip, gzip", "gzip, identity"])
async def test_a_body_in_an_encoding_not_decoded_here_is_415_and_starts_nothing(
    start_server: StartServer, encoding: str
) -> None:
    """Read as raw bytes, such a body would be parsed as whatever it happens to hold."""
    server = await start_server()
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    ) as response:
        assert response.status == 415
        error = (await response.json())["error"]
    assert error == {
        "type": "unsupported_media_type",
        "message": f"Content-Encoding {encoding!r} is not decoded here; send one of "
                   "deflate, gzip, identity, x-gzip, or none.",
    }
    async with aiohttp.ClientSession() as session, session.get(server.url + "/healthz") as r:
        assert (await r.json())["active_streams"] == 0
