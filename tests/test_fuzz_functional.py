"""Bad input, fuzzed (docs/protocol.md, "Requests" and "Errors"): query strings, JSON
bodies, headers (bytes that are not UTF-8 included), methods, raw request lines and heads
(sizes, counts, encodings), bodies with a Content-Encoding, and `/static/` names, on every
route. Every answer is a well-formed status with a JSON error, or a valid SSE stream, or
the route's own content; never a 500. The log is checked as well as the answers: each
request writes exactly one access-log line, in printable ASCII (whatever the client sent
is escaped), and nothing at WARNING or above, no traceback. Afterwards the server is
healthy, nothing runs, and the event loop
holds as many tasks as before.

Requests go over a raw socket (`_raw`), so the fuzzer can send what aiohttp's client
would refuse to: any method token, undecodable bytes in a header value, a body that
contradicts its Content-Type, a request line or head beyond the server's bounds. What
the HTTP parser refuses gets a JSON error too (connections.py);
`test_what_the_http_parser_refuses_changes_nothing` shows that it also starts nothing.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import logging
import re
import zlib
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sseserver.app_keys import GENERATIONS
from sseserver.generations import FIRST_SUBSCRIBER_GRACE
from sseserver.server_tools_config import OutputSchema
from sseserver.tools.definitions import tool_specs

from .conftest import RunningServer, StartServer
from .support.jwt_issuer import AUDIENCE, SECRET, claims, hs256
from .support.raw_http import parse_answer
from .support.sample_files import b64, gif, pdf, png
from .support.sse_parser import parse_all
from .support.tool_handlers import RUNS

TOKEN: Final = "fuzz-token-0123456789abcdef"
FUZZ: Final = settings(
    max_examples=300,
    deadline=None,
    # One server serves every example: that is the point (it must stay healthy).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_STATUSES: Final = {200, 201, 400, 401, 403, 404, 405, 408, 413, 414, 415, 429, 431,
                         503}
PATHS: Final = [
    "/", "/healthz", "/metrics", "/api/sse", "/api/streams", "/api/streams/abc",
    "/api/streams/STREAM", "/static/app.js", "/static/../pyproject.toml", "/api/", "/nope",
    "/api/chat", "/api/chat/CHAT/stream", "/api/chat/never/stream", "/api/chat/a%20b/stream",
    "/api/chat/%2E%2E/stream", "/login", "/api/usage",
]


class Answer:
    def __init__(self, raw: bytes, method: str) -> None:
        answer = parse_answer(raw)
        self.status, self.headers, self.body = answer.status, answer.headers, answer.body
        self.method = method


class LogWatch(logging.Handler):
    """Every record the server logs while a fuzz test runs, at INFO and above, checked
    after each request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._level = logging.WARNING

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def attach(self) -> None:
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self)

    def detach(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)

    def check_one_request(self) -> None:
        """Since the last check: one access-log line, printable ASCII, and no warning,
        error or traceback."""
        records, self.records = self.records, []
        access = [r.getMessage() for r in records if r.name == "aiohttp.access"]
        assert len(access) == 1, access
        assert access[0].isascii(), access
        assert access[0].isprintable(), access
        loud = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
        assert loud == []
        assert all(r.exc_info is None for r in records)


# The server's log, watched for the test that runs (see `server`).
LOGS: Final = LogWatch()


async def _raw(server: RunningServer, request: bytes, method: str) -> Answer:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            raw = await reader.read()  # Connection: close, so read to the end
    finally:
        writer.close()
    # The access-log line is written before the connection is closed.
    LOGS.check_one_request()
    return Answer(raw, method)


def _request(method: str, target: str, headers: list[tuple[str, bytes]],
             body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: fuzz", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def check(answer: Answer, path: str) -> None:
    """The invariant: a well-formed answer, never a 500, never a stack trace."""
    if currently_in_test_context():  # hypothesis' statistics, when it runs this
        event(f"{answer.status} {answer.headers.get('content-type', '').split(';')[0]}")
    assert answer.status < 500 or answer.status == 503, answer.body[:300]
    assert b"Traceback" not in answer.body
    content_type = answer.headers.get("content-type", "")
    assert answer.headers.get("x-content-type-options") == "nosniff"
    if answer.method == "HEAD" or answer.status in (204, 303):
        return
    if answer.status >= 400:
        assert answer.status in JSON_STATUSES
        assert content_type.startswith("application/json"), (answer.status, content_type)
        error = json.loads(answer.body)["error"]
        assert isinstance(error["type"], str)
        assert isinstance(error["message"], str)
        assert error["message"]
    elif content_type.startswith("text/event-stream"):
        text = answer.body.decode("utf-8")  # strict: valid UTF-8, no BOM
        assert not text.startswith("\ufeff")
        events = parse_all(answer.body)
        assert text.endswith("\n\n")
        if path.startswith("/api/chat"):  # the AI SDK's UI message stream
            assert answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert json.loads(events[0].data)["type"] == "start"
            assert [json.loads(e.data)["type"] for e in events[1:-1]]  # each one JSON
            assert events[-1].data == "[DONE]"
            return
        assert events[0].type == "meta" or path.startswith("/api/streams/")
        assert events[-1].type in ("done", "error")
    elif content_type.startswith("application/json"):
        json.loads(answer.body)


@pytest.fixture
async def server(start_server: StartServer) -> AsyncIterator[RunningServer]:
    """The demo provider at full speed, three tokens a reply, small limits (thinking and
    web search allowed, in small bounds), a token, the fuzzer's own address trusted as a
    proxy (so its forwarded headers are read); and the check that every test leaves
    nothing running."""
    running = await start_server(
        demo_delay_ms=0, demo_tokens=3, resume_window=2, max_message_chars=200,
        max_body_bytes=4096, max_tokens=2000, models=("claude-sonnet-5-5", "claude-haiku-5-5"),
        access_token=TOKEN, forwarded_allow_ips=(ipaddress.ip_network("127.0.0.1"),),
        max_thinking_tokens=1500, web_search=2, web_fetch=2, code_execution=True,
        output_schemas=(OutputSchema("answer", {"type": "object"}),),
    )
    baseline = len(asyncio.all_tasks())
    LOGS.attach()
    try:
        yield running
        await _assert_settled(running, baseline)
    finally:
        LOGS.detach()
        LOGS.records.clear()


async def _assert_settled(server: RunningServer, baseline: int) -> None:
    """Healthy, no generation, and the loop back to its task count once the last
    connections close and the streams made for the fuzzed requests are cancelled (a
    refused request leaves its stream waiting for a first subscriber; the wait out of that
    grace is tested in test_hostile_functional.py)."""
    while CREATED:
        stream_id = CREATED.pop()
        cancel = await _raw(server, _request(
            "DELETE", f"/api/streams/{stream_id}", _auth(True)), "DELETE")
        assert cancel.status in (204, 404), (stream_id, cancel)
    generations = server.app[GENERATIONS]
    for _ in range(int((FIRST_SUBSCRIBER_GRACE + 2) * 100)):
        if generations.active == 0 and len(asyncio.all_tasks()) <= baseline:
            break
        await asyncio.sleep(0.01)
    health = await _raw(server, _request("GET", "/healthz", []), "GET")
    assert health.status == 200
    assert json.loads(health.body)["status"] == "ok"
    assert generations.active == 0
    left = len(asyncio.all_tasks())
    assert left <= baseline, [t.get_name() for t in asyncio.all_tasks()]


# With the token most of the time, so most requests reach the routes behind it.
authed = st.sampled_from([True, True, True, True, False])


def _auth(use: bool) -> list[tuple[str, bytes]]:
    return [("Authorization", f"Bearer {TOKEN}".encode())] if use else []


def _post_headers(auth: bool, content_type: bytes) -> list[tuple[str, bytes]]:
    """The token if `auth`, and the content type unless it is empty (none sent)."""
    return [*_auth(auth), ("Content-Type", content_type)] if content_type else _auth(auth)


# The streams _stream_path made, cancelled when the test ends.
CREATED: list[str] = []


async def _stream_path(server: RunningServer, path: str) -> str:
    """`STREAM` in a path becomes a real stream's id (one that just ran); `CHAT` names a
    chat that has had a reply."""
    if "CHAT" in path:
        reply = await _raw(server, _request(
            "POST", "/api/chat", [*_auth(True), ("Content-Type", b"application/json")],
            CHAT_BODY), "POST")
        assert reply.status == 200
        return path.replace("CHAT", "fuzz-chat")
    if "STREAM" not in path:
        return path
    created = await _raw(server, _request(
        "POST", "/api/streams", [*_auth(True), ("Content-Type", b"application/json")],
        b'{"messages":[{"role":"user","content":"hi"}]}'), "POST")
    assert created.status == 201
    stream_id = json.loads(created.body)["id"]
    CREATED.append(stream_id)
    return path.replace("STREAM", stream_id)


# ---- strategies ----

any_text = st.text(max_size=300)
# Percent-escapes of any byte: invalid UTF-8 once decoded, NULs, line breaks.
escaped_bytes = st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b))
query_keys = st.sampled_from(
    ["message", "model", "max_tokens", "system", "thinking", "web_search", "lastEventId",
     "token", "x", "", "web_fetch", "code_execution", "tool_search", "container", "effort",
     "output_schema"]
) | st.text(max_size=10)
# Around every bound: max_tokens 2000, budgets 1024..1500 (and below max_tokens), 1-2 uses.
query_values = (
    any_text
    | escaped_bytes
    | st.sampled_from(["", "hi", "0", "-1", "1", "2", "3", "1023", "1024", "1500", "1501",
                       "2000", "2001", "1e3", "NaN", "off", "on", "adaptive", "OFF",
                       "claude-haiku-5-5", "abc:1", "abc:99999999999", ":0", "x" * 201, "%",
                       "%zz", "&&", "==", "low", "xhigh", "max", "answer", "container_1",
                       "c" * 129, "a/b", "true"])
    | st.integers().map(str)
)
valid_message = st.text(min_size=1, max_size=50).filter(str.strip).map(lambda m: ("message", m))
queries = st.one_of(
    st.lists(st.tuples(query_keys, query_values), max_size=6),
    # A valid message plus fuzzed others, so the fuzz reaches the stream too.
    st.tuples(valid_message, st.lists(st.tuples(query_keys, query_values), max_size=3)).map(
        lambda pair: [pair[0], *pair[1]]
    ),
)


def _encode_query(pairs: list[tuple[str, str]]) -> str:
    # Pre-escaped values pass as they are; everything else is escaped as a browser would.
    def enc(value: str) -> str:
        return value if re.fullmatch(r"(%[0-9A-F]{2})+", value) else quote(value, safe="")
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", ""]) | json_values,
         "content": any_text | json_values},
        optional={"extra": json_values},
    ),
    max_size=5,
)
turn_text = st.text(min_size=1, max_size=80).filter(str.strip)
CHAT_BODY: Final = json.dumps({"id": "fuzz-chat", "messages": [
    {"id": "m0", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}).encode()
conversations = st.integers(1, 5).flatmap(
    lambda n: st.tuples(*[
        st.fixed_dictionaries({"role": st.just("user" if i % 2 == 0 else "assistant"),
                               "content": turn_text})
        for i in range(n)
    ]).map(list)
)
thinking_values = st.sampled_from(["off", "adaptive", "on", "", 1023, 1024, 1500, 1501,
                                   0, -1, 1024.0, True, None]) | st.integers()
web_search_values = st.sampled_from(["off", "on", "", 0, 1, 2, 3, 1.0, False, None])
switch_values = st.sampled_from(["off", "on", "", "ON", 0, 1, True, False, None])
container_values = st.sampled_from(["container_1", "", "c" * 128, "c" * 129, "a b", "a/b",
                                    7, None])
effort_values = st.sampled_from(["low", "medium", "high", "xhigh", "max", "HIGH", "", 3,
                                 None])
schema_values = st.sampled_from(["answer", "other", "", {"type": "object"}, None])
# The server tools' fields, each around its values (web fetch: 1-2 uses; tool search off).
server_options = {
    "web_fetch": web_search_values, "code_execution": switch_values,
    "tool_search": switch_values, "container": container_values,
    "effort": effort_values, "output_schema": schema_values,
}
nearly_valid = st.fixed_dictionaries(
    {"messages": conversations},
    optional={
        "model": st.sampled_from(["claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5"]),
        "max_tokens": st.integers(-1, 2001),
        "system": st.text(max_size=220),
        "thinking": thinking_values,
        "web_search": web_search_values,
        **server_options,
    },
).map(lambda d: json.dumps(d).encode())
# Content arrays: blocks of every type a message may hold, nearly right or not at all, and
# tool calls answered by ids that match, or do not.
tool_ids = st.sampled_from(["toolu_1", "toolu_2", "bad id", ""]) | any_text
blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": turn_text | json_values}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": tool_ids,
                           "name": st.sampled_from(["current_time", "browser_locale", "x"]),
                           "input": st.just({}) | json_values}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": tool_ids},
                          optional={"content": any_text | json_values,
                                    "is_error": st.booleans() | json_values}),
    st.fixed_dictionaries({"type": st.sampled_from(["thinking", "redacted_thinking", "image",
                                                    "document", "server_tool_use"])},
                          optional={"thinking": any_text, "signature": any_text,
                                    "data": any_text, "source": json_values}),
    # What a turn or a compaction event carries back: server tool results, MCP, files.
    st.fixed_dictionaries({"type": st.sampled_from([
        "web_fetch_tool_result", "code_execution_tool_result", "mcp_tool_use",
        "mcp_tool_result", "mcp_tool_listing", "container_upload", "compaction"])},
        optional={"tool_use_id": tool_ids, "id": tool_ids, "name": any_text,
                  "server_name": any_text | json_values, "input": json_values,
                  "content": any_text | json_values, "is_error": json_values,
                  "file_id": any_text, "tools": json_values, "mcp_server_name": any_text,
                  "encrypted_content": any_text | json_values, "signature": json_values}),
    json_values,
)
content_arrays = st.integers(1, 4).flatmap(
    lambda n: st.tuples(*[
        st.fixed_dictionaries({"role": st.just("user" if i % 2 == 0 else "assistant"),
                               "content": turn_text | st.lists(blocks, max_size=3)})
        for i in range(n)
    ]).map(lambda turns: json.dumps({"messages": list(turns)}).encode())
)
bodies = st.one_of(
    nearly_valid,
    content_arrays,
    st.fixed_dictionaries(
        {"messages": messages | json_values},
        optional={
            "model": st.sampled_from(["claude-sonnet-5-5", "claude-haiku-5-5", "gpt"])
            | json_values,
            "max_tokens": st.integers(-5, 2100) | json_values,
            "system": any_text | json_values,
            "thinking": thinking_values | json_values,
            "web_search": web_search_values | json_values,
            **{name: values | json_values for name, values in server_options.items()},
            "stream": json_values,
        },
    ).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=600),
    st.just(b'{"messages":[{"role":"user","content":"' + b"x" * 5000 + b'"}]}'),
)
ui_texts = any_text | json_values
ui_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": ui_texts}),
    st.fixed_dictionaries({"type": st.sampled_from([
        "step-start", "reasoning", "source-url", "file", "tool-web_search", "dynamic-tool",
        "data-x", "steering-message", "video", "", "text"]) | json_values},
        optional={"text": ui_texts, "url": any_text, "data": json_values}),
    json_values,
)
ui_messages = st.lists(
    st.fixed_dictionaries(
        {"id": any_text | json_values,
         "role": st.sampled_from(["user", "assistant", "system", "tool"]) | json_values,
         "parts": st.lists(ui_parts, max_size=4) | json_values},
        optional={"metadata": json_values},
    ),
    max_size=5,
)
chat_ids = st.sampled_from(["c1", "c2", ".", "..", "", "a b", "x" * 129, "ok-_.~"]) | any_text
valid_chat = st.integers(1, 5).flatmap(
    lambda n: st.tuples(*[
        st.fixed_dictionaries({
            "id": st.just(f"m{i}"), "role": st.just("user" if i % 2 == 0 else "assistant"),
            "parts": st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                     "text": turn_text}), min_size=1,
                              max_size=2)})
        for i in range(n - (n % 2 == 0))  # an odd count: it ends with the user
    ]).map(list)
)
chat_bodies = st.one_of(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["c1", "c2"]), "messages": valid_chat},
        optional={"trigger": st.sampled_from(["submit-message", "regenerate-message", "x"]),
                  "messageId": st.none() | any_text | json_values,
                  "max_tokens": st.integers(-1, 101),
                  "model": st.sampled_from(["claude-sonnet-5-5", "gpt"]),
                  "thinking": thinking_values, "web_search": web_search_values,
                  **server_options},
    ).map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries(
        {"id": chat_ids | json_values, "messages": ui_messages | json_values},
        optional={"trigger": any_text | json_values, "messageId": json_values,
                  "system": any_text | json_values, "extra": json_values},
    ).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=600),
)
# Images and documents (docs/protocol.md, "Attachments"): real files and ones that lie
# about their type, base64 cut, padded wrongly or with foreign characters, sources of
# every kind with every media type, URLs of every scheme.
FILES: Final = [png(), gif(), pdf(), b"\xff\xd8\xff\xe0" + bytes(12), b"RIFF\0\0\0\0WEBPVP8 ",
                b"", b"%PDF", b"not a file"]
file_data = st.one_of(
    st.sampled_from(FILES).map(b64),
    st.tuples(st.sampled_from(FILES).map(b64), st.integers(0, 60), any_text).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
    st.sampled_from(FILES).map(lambda f: b64(f).rstrip("=")),
    any_text,
    json_values,
)
media_types = st.sampled_from(["image/png", "image/gif", "image/jpeg", "image/webp",
                               "application/pdf", "text/plain", "image/bmp", ""]) | json_values
sources = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["base64", "text", "url", "content", ""]),
                           "media_type": media_types, "data": file_data}),
    st.fixed_dictionaries({"type": st.sampled_from(["url", "base64"]), "url": st.sampled_from(
        ["https://example.com/a.png", "http://example.com/a.pdf", "https://", "ftp://x/y",
         "https://a.example/x y", "javascript:alert(1)"]) | any_text}),
    json_values,
)
attachments = st.fixed_dictionaries(
    {"type": st.sampled_from(["image", "document"]), "source": sources},
    optional={"title": any_text | json_values, "context": any_text | json_values,
              "citations": json_values, "cache_control": json_values},
)
attachment_bodies = st.integers(1, 3).flatmap(
    lambda n: st.tuples(*[
        st.fixed_dictionaries({
            "role": st.just("user" if i % 2 == 0 else "assistant"),
            "content": turn_text | st.lists(attachments | st.fixed_dictionaries(
                {"type": st.just("text"), "text": turn_text}), min_size=1, max_size=4)})
        for i in range(n)
    ]).map(lambda turns: json.dumps({"messages": list(turns)}).encode())
)
file_parts = st.fixed_dictionaries(
    {"type": st.just("file"), "mediaType": media_types,
     "url": st.one_of(file_data.map(lambda d: f"data:image/png;base64,{d}"),
                      st.sampled_from(FILES).map(lambda f: f"data:application/pdf;base64,"
                                                            f"{b64(f)}"),
                      st.sampled_from(["https://example.com/a.png", "http://x/y.pdf",
                                       "data:,hello", "data:text/plain;base64,aGk="]),
                      any_text)},
    optional={"filename": any_text | json_values},
)
file_chats = st.lists(file_parts | st.fixed_dictionaries(
    {"type": st.just("text"), "text": turn_text}), min_size=1, max_size=3).map(
    lambda parts: json.dumps({"id": "c3", "messages": [
        {"id": "m0", "role": "user", "parts": parts}]}).encode())
content_types = st.sampled_from(
    [b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON",
     b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x",
     b""]
)
# Header values as HTTP allows them on the wire: visible ASCII, space, tab, and obs-text
# (bytes 0x80-0xFF, which are not UTF-8 on their own).
header_bytes = st.binary(max_size=2000).map(
    lambda b: bytes(c for c in b if c in (9, 32) or 33 <= c <= 126 or c >= 128).strip()
)
last_event_ids = st.one_of(
    header_bytes,
    # Any Unicode but control characters, as UTF-8 (which the parser accepts as obs-text).
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=300).map(
        lambda t: t.encode("utf-8").strip()
    ),
    st.sampled_from([b"abc:1", b"abc:-1", b"abc:99999999999", b":", b"a:b:c", b"x" * 8000,
                     "ñ:1".encode(), b"\xff\xfe:1", b"STREAM:0", b"STREAM:2", b"STREAM:999"]),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"]
) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)  # the parser's 400


# ---- the fuzz tests ----


@FUZZ
@given(path=st.sampled_from(PATHS), pairs=queries, auth=authed)
async def test_fuzzed_query_strings(
    server: RunningServer, path: str, pairs: list[tuple[str, str]], auth: bool
) -> None:
    path = await _stream_path(server, path)
    answer = await _raw(server, _request("GET", f"{path}?{_encode_query(pairs)}", _auth(auth)),
                        "GET")
    check(answer, path)


@FUZZ
@given(body=bodies, content_type=content_types, auth=authed)
async def test_fuzzed_json_bodies(
    server: RunningServer, body: bytes, content_type: bytes, auth: bool
) -> None:
    headers = _post_headers(auth, content_type)
    answer = await _raw(server, _request("POST", "/api/streams", headers, body), "POST")
    check(answer, "/api/streams")
    if answer.status == 201:  # a valid body: its stream can be read to the end
        url = json.loads(answer.body)["url"]
        stream = await _raw(server, _request("GET", url, _auth(True)), "GET")
        check(stream, url)


@FUZZ
@given(body=bodies, content_type=content_types, auth=authed)
async def test_fuzzed_sign_in_bodies(
    server: RunningServer, body: bytes, content_type: bytes, auth: bool
) -> None:
    headers = _post_headers(auth, content_type)
    answer = await _raw(server, _request("POST", "/login", headers, body), "POST")
    check(answer, "/login")
    assert answer.status in (204, 400, 401, 413, 415)
    assert ("set-cookie" in answer.headers) == (answer.status == 204)


@FUZZ
@given(body=attachment_bodies)
async def test_fuzzed_attachments(server: RunningServer, body: bytes) -> None:
    """Images and documents nearly right or not at all: a JSON 4xx, or a stream."""
    headers = _post_headers(True, b"application/json")
    answer = await _raw(server, _request("POST", "/api/streams", headers, body), "POST")
    check(answer, "/api/streams")
    if answer.status == 201:
        url = json.loads(answer.body)["url"]
        check(await _raw(server, _request("GET", url, _auth(True)), "GET"), url)


@FUZZ
@given(body=file_chats)
async def test_fuzzed_file_parts(server: RunningServer, body: bytes) -> None:
    """The AI SDK's file parts, nearly right or not at all: a JSON 4xx, or a stream."""
    headers = _post_headers(True, b"application/json")
    check(await _raw(server, _request("POST", "/api/chat", headers, body), "POST"),
          "/api/chat")


@FUZZ
@given(body=chat_bodies, content_type=content_types, auth=authed)
async def test_fuzzed_chat_bodies(
    server: RunningServer, body: bytes, content_type: bytes, auth: bool
) -> None:
    """The AI SDK's chat route: its reply, then its reconnect and its Stop."""
    headers = _post_headers(auth, content_type)
    answer = await _raw(server, _request("POST", "/api/chat", headers, body), "POST")
    check(answer, "/api/chat")
    if answer.status == 200:
        chat = json.loads(body)["id"]
        for method in ("GET", "DELETE"):
            path = f"/api/chat/{chat}/stream"
            check(await _raw(server, _request(method, path, _auth(True)), method), path)


# Chat histories with tool parts, of the tools `tool_server` offers and of others, in every
# state and nearly right: what useChat resends after a client tool or an approval.
ui_tool_parts = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["tool-lookup", "tool-guarded", "tool-locate", "tool-shell",
                                  "tool-web_search", "dynamic-tool", "tool-"]),
         "toolCallId": tool_ids | json_values,
         "state": st.sampled_from(["input-streaming", "input-available", "approval-requested",
                                   "approval-responded", "output-available", "output-error",
                                   "output-denied", "x"]) | json_values},
        optional={"input": st.just({}) | st.just({"q": "x"}) | json_values,
                  "output": any_text | json_values, "errorText": any_text | json_values,
                  "toolName": st.sampled_from(["lookup", "guarded", "locate"]) | json_values,
                  "providerExecuted": st.booleans(),
                  "approval": st.fixed_dictionaries(
                      {"id": any_text}, optional={"approved": st.booleans() | json_values,
                                                  "reason": any_text | json_values})
                  | json_values},
    ),
    st.fixed_dictionaries(
        {"type": st.just("reasoning"), "text": any_text | json_values},
        optional={"providerMetadata": st.fixed_dictionaries({"anthropic": st.fixed_dictionaries(
            {}, optional={"signature": any_text | json_values,
                          "redactedData": any_text | json_values})}) | json_values}),
    st.fixed_dictionaries({"type": st.sampled_from(["text", "step-start"]),
                           "text": turn_text}),
    # A reply's compaction, its block nearly right, and the parts of Claude's own tools.
    st.fixed_dictionaries({"type": st.just("data-compaction"), "data": st.fixed_dictionaries(
        {}, optional={"content": any_text | json_values, "block": st.fixed_dictionaries(
            {"type": st.just("compaction") | json_values},
            optional={"content": st.none() | any_text | json_values,
                      "encrypted_content": st.none() | any_text | json_values,
                      "signature": st.none() | any_text | json_values,
                      "tool_changes": st.none() | json_values,
                      "cache_control": json_values}) | json_values}) | json_values}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["tool-web_fetch", "tool-code_execution", "dynamic-tool",
                                  "data-file", "data-unsupported"]),
         "toolCallId": tool_ids, "state": st.just("output-available"),
         "input": st.just({}), "toolName": st.just("get_issue")},
        optional={"callProviderMetadata": st.just(
            {"anthropic": {"type": "mcp-tool-use", "serverName": "s"}}) | json_values}),
)
# What a reply that ran code leaves in its message's metadata (its container).
ui_metadata = st.fixed_dictionaries({}, optional={"container": st.fixed_dictionaries(
    {}, optional={"id": st.just("container_011") | any_text | json_values,
                  "expiresAt": st.just("2099-01-01T00:00:00Z") | any_text | json_values})
    | json_values}) | json_values
tool_chats = st.tuples(
    st.lists(ui_tool_parts, min_size=1, max_size=5),
    st.booleans(),
    ui_metadata,
    st.sampled_from([{}, {"code_execution": "on"}]),
).map(lambda chat: json.dumps({"id": "tool-chat", "messages": [
    {"id": "m0", "role": "user", "parts": [{"type": "text", "text": "Go"}]},
    {"id": "m1", "role": "assistant", "parts": [{"type": "step-start"}, *chat[0]],
     "metadata": chat[2]},
    *([{"id": "m2", "role": "user", "parts": [{"type": "text", "text": "And?"}]}]
      if chat[1] else []),
], **chat[3]}).encode())


@pytest.fixture
async def tool_server(start_server: StartServer) -> AsyncIterator[RunningServer]:
    """As `server`, offering a server-run tool, one that needs approval (both run by
    tests.support.tool_handlers:lookup, which counts its runs) and a client-run one, and
    code execution (so a history's container is read)."""
    RUNS.reset()
    running = await start_server(
        demo_delay_ms=0, demo_tokens=3, resume_window=2, max_message_chars=200,
        max_body_bytes=4096, access_token=TOKEN, code_execution=True, tools=tool_specs([
            {"name": "lookup", "input_schema": {"type": "object"},
             "handler": "tests.support.tool_handlers:lookup"},
            {"name": "guarded", "input_schema": {"type": "object"}, "needs_approval": True,
             "handler": "tests.support.tool_handlers:lookup"},
            {"name": "locate", "input_schema": {"type": "object"}},
        ]),
    )
    baseline = len(asyncio.all_tasks())
    LOGS.attach()
    try:
        yield running
        await _assert_settled(running, baseline)
    finally:
        LOGS.detach()
        LOGS.records.clear()


@FUZZ
@given(body=tool_chats, auth=authed)
async def test_fuzzed_chat_tool_histories(
    tool_server: RunningServer, body: bytes, auth: bool
) -> None:
    """A refused history runs no handler; an accepted one streams (running only the calls
    the user approved in the last message)."""
    runs = len(RUNS.inputs)
    headers = _post_headers(auth, b"application/json")
    answer = await _raw(tool_server, _request("POST", "/api/chat", headers, body), "POST")
    check(answer, "/api/chat")
    event(f"chat with tools: {answer.status}")
    if answer.status != 200:
        assert len(RUNS.inputs) == runs


@FUZZ
@given(
    path=st.sampled_from(["/api/sse?message=hi", "/api/streams/STREAM", "/", "/metrics",
                          "/api/chat/CHAT/stream"]),
    last_event_id=last_event_ids,
    extra=st.lists(
        st.tuples(st.sampled_from(["Authorization", "Cookie", "Origin", "Accept",
                                   "Accept-Encoding", "Content-Type", "X-Forwarded-For",
                                   "X-Forwarded-Proto"]),
                  header_bytes),
        max_size=4,
        unique_by=lambda header: header[0],  # a repeated Content-Type is the parser's 400
    ),
    auth=authed,
)
async def test_fuzzed_headers(
    server: RunningServer, path: str, last_event_id: bytes,
    extra: list[tuple[str, bytes]], auth: bool,
) -> None:
    path = await _stream_path(server, path)
    stream_id = path.rsplit("/", 1)[-1]
    last_event_id = last_event_id.replace(b"STREAM", stream_id.encode())
    headers = [*_auth(auth), *extra]
    if last_event_id:
        headers.append(("Last-Event-ID", last_event_id))
    check(await _raw(server, _request("GET", path, headers), "GET"), path)


@FUZZ
@given(method=methods, path=st.sampled_from([*PATHS, "/api/sse?message=hi"]),
       body=st.binary(max_size=200), auth=authed)
async def test_fuzzed_methods(
    server: RunningServer, method: str, path: str, body: bytes, auth: bool
) -> None:
    if method == "CONNECT":
        path = "fuzz:80"  # CONNECT takes an authority, not a path
    else:
        path = await _stream_path(server, path)
    headers = [*_auth(auth), ("Content-Type", b"application/json")]
    check(await _raw(server, _request(method, path, headers, body), method), path)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET /api/sse?message=hi HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "
                     + b"x" * 100_000 + b"\r\n\r\n", 431, id="huge-last-event-id"),
        pytest.param(b"GET /api/sse?message=hi HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a\x01b"
                     b"\r\n\r\n", 400, id="control-byte-in-header"),
        pytest.param(b"GET /api/sse?message=hi\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                     id="nul-in-target"),
        pytest.param(b"\xff\xfe\r\n\r\n", 400, id="not-http"),
        pytest.param(b"POST /api/streams HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                     id="smuggling-headers"),
        pytest.param(b"GET /api/sse?message=" + b"m" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     414, id="request-line-over-8190"),
        pytest.param(b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431,
                     id="150-headers"),
        pytest.param(b"GET /?token=" + TOKEN.encode() + b" HTTP/9.9\r\nHost: x\r\n\r\n", 400,
                     id="bad-version"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400,
                     id="tls-client-hello"),
    ],
)
async def test_what_the_http_parser_refuses_changes_nothing(
    server: RunningServer, request_bytes: bytes, status: int
) -> None:
    answer = await _raw(server, request_bytes, "GET")
    assert answer.status == status
    check(answer, "/")
    assert server.app[GENERATIONS].active == 0


# ---- raw request lines and heads, encoded bodies, /static/ ----

token_chars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
raw_methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"DELETE", b"OPTIONS"]) | st.text(
    token_chars, min_size=1, max_size=10).map(str.encode) | st.binary(min_size=1, max_size=8)
raw_targets = st.one_of(
    st.sampled_from([p.encode() for p in PATHS]),
    st.tuples(st.sampled_from([b"/api/sse?", b"/?", b"/static/"]),
              st.binary(max_size=300)).map(b"".join),
    st.sampled_from([b"*", b"http://fuzz/healthz", b"//healthz", b"/" + b"a" * 8000,
                     b"/" + b"a" * 8300, b"/%", b"/%%zz", b"/\xc3\x28"]),
)
raw_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b"HTTP/2", b"http/1.1",
                                b"HTTP/1.1 extra", b""])
# Header names: common ones and any bytes; values: any bytes but CR and LF (which would
# make another header or end the head: one request per connection keeps the count of
# access-log lines exact), in sizes around the bounds.
raw_names = st.sampled_from([b"Accept", b"Cookie", b"Authorization", b"Last-Event-ID",
                             b"Origin", b"X-Forwarded-For", b"Content-Type", b"Upgrade",
                             b"Expect", b"Content-Encoding"]) | st.binary(min_size=1, max_size=20)
raw_values = st.one_of(
    st.binary(max_size=100),
    st.integers(0, 9000).map(lambda n: b"v" * n),
).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
raw_headers = st.one_of(
    st.lists(st.tuples(raw_names, raw_values), max_size=12),
    st.integers(90, 130).map(lambda n: [(b"X-Many", b"m")] * n),  # around 100 headers
    st.integers(3, 5).map(lambda n: [(b"X-Big", b"b" * 8000)] * n),  # around 32 KB
)


@FUZZ
@given(method=raw_methods, target=raw_targets, version=raw_versions, headers=raw_headers,
       auth=authed)
async def test_fuzzed_raw_request_heads(
    server: RunningServer, method: bytes, target: bytes, version: bytes,
    headers: list[tuple[bytes, bytes]], auth: bool,
) -> None:
    line = b" ".join(part for part in (method, target, version) if part)
    head = [line, b"Host: fuzz", b"Connection: close"]
    head += [b"Authorization: Bearer " + TOKEN.encode()] if auth else []
    head += [name + b": " + value for name, value in headers
             if name.lower() not in (b"content-length", b"transfer-encoding", b"connection")]
    answer = await _raw(server, b"\r\n".join(head) + b"\r\n\r\n",
                        method.decode("latin-1"))
    check(answer, target.decode("latin-1"))


def _compressed(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data)
    compressor = zlib.compressobj()
    return compressor.compress(data) + compressor.flush()


encoded_bodies = st.tuples(
    bodies,
    st.sampled_from(["gzip", "deflate"]),
    st.sampled_from(["intact", "truncated", "flipped", "not-compressed"]),
    st.sampled_from([b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, deflate",
                     b"x-unknown", b"GZIP"]),
)


@FUZZ
@given(body=encoded_bodies, auth=authed)
async def test_fuzzed_bodies_with_a_content_encoding(
    server: RunningServer, body: tuple[bytes, str, str, bytes], auth: bool
) -> None:
    data, how, damage, declared = body
    sent = data if damage == "not-compressed" else _compressed(data, how)
    if damage == "truncated":
        sent = sent[: max(1, len(sent) // 2)]
    elif damage == "flipped" and len(sent) > 12:
        sent = sent[:10] + bytes([sent[10] ^ 0xFF]) + sent[11:]
    headers = [*_auth(auth), ("Content-Type", b"application/json"),
               ("Content-Encoding", declared)]
    answer = await _raw(server, _request("POST", "/api/streams", headers, sent), "POST")
    check(answer, "/api/streams")
    if answer.status == 201:
        url = json.loads(answer.body)["url"]
        check(await _raw(server, _request("GET", url, _auth(True)), "GET"), url)


static_names = st.one_of(
    st.text(max_size=40).map(lambda t: quote(t, safe="/")),
    escaped_bytes,
    st.integers(200, 2000).map(lambda n: "a" * n),
    st.sampled_from(["app.js", "../pyproject.toml", "%2e%2e/pyproject.toml", "a%00b", ".",
                     "..", "/etc/passwd", "%2fetc%2fpasswd", "app.js%00.png", "app.js/",
                     "vendor/../app.js", "\\..\\x"]),
)


@FUZZ
@given(name=static_names, method=st.sampled_from(["GET", "HEAD"]))
async def test_fuzzed_static_names(server: RunningServer, name: str, method: str) -> None:
    answer = await _raw(server, _request(method, "/static/" + name, []), method)
    check(answer, "/static/")
    assert answer.status in (200, 400, 404, 414, 431), answer.status


@pytest.fixture
async def users_server(start_server: StartServer) -> AsyncIterator[RunningServer]:
    """As `server`, with users (HS256 tokens) and a budget instead of the access token."""
    running = await start_server(
        demo_delay_ms=0, demo_tokens=3, resume_window=2, max_body_bytes=4096,
        jwt_secret_file=SECRET, jwt_audience=AUDIENCE, budget_tokens=100_000,
        max_streams_per_client=0,
    )
    baseline = len(asyncio.all_tasks())
    LOGS.attach()
    try:
        yield running
        await _assert_settled(running, baseline)
    finally:
        LOGS.detach()
        LOGS.records.clear()


def _jwt_parts() -> st.SearchStrategy[bytes]:
    """Tokens that are almost right: a good one cut, padded, re-signed or recombined
    with fuzzed parts, and any bytes."""
    good = hs256(claims("fuzzer")).encode()
    header, payload, signature = good.split(b".")
    part = st.one_of(st.sampled_from([header, payload, signature, b"", b"e30", b"bnVsbA"]),
                     st.binary(max_size=60))
    return st.one_of(
        st.just(good),
        st.tuples(part, part, part).map(lambda p: b".".join(p)),
        st.integers(0, len(good)).map(lambda n: good[:n]),
        header_bytes,
    )


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(["/api/usage", "/api/sse?message=hi", "/api/streams",
                          "/api/streams/STREAM", "/metrics", "/?token=", "/api/chat/c/stream"]),
    token=_jwt_parts(),
    where=st.sampled_from(["bearer", "cookie", "query"]),
)
async def test_fuzzed_user_tokens(
    users_server: RunningServer, method: str, path: str, token: bytes, where: str,
) -> None:
    """Whatever a token holds, the answer is a JSON error (401 with its challenge), a
    stream or the route's own content; never a 500."""
    if "STREAM" in path:  # a stream of the token's own user, when the token is good
        created = await _raw(users_server, _request(
            "POST", "/api/streams", [("Authorization", f"Bearer {hs256(claims('fuzzer'))}"
                                      .encode()), ("Content-Type", b"application/json")],
            b'{"messages":[{"role":"user","content":"hi"}]}'), "POST")
        assert created.status == 201
        path = path.replace("STREAM", json.loads(created.body)["id"])
    headers: list[tuple[str, bytes]] = []
    if where == "bearer":
        headers.append(("Authorization", b"Bearer " + token))
    elif where == "cookie":
        headers.append(("Cookie", b"sseserver_token=" + token))
    elif path.endswith("?token="):
        path += quote(token, safe="")
    if method == "POST":
        headers.append(("Content-Type", b"application/json"))
    body = b'{"messages": [{"role": "user", "content": "hi"}]}' if method == "POST" else b""
    answer = await _raw(users_server, _request(method, path, headers, body), method)
    check(answer, path)
    if answer.status == 401:
        assert answer.headers["www-authenticate"].startswith('Bearer realm="sseserver"')
