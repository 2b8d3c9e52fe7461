"""Images and documents through the real server (docs/protocol.md, "Attachments"): a PNG
and a PDF reach the API byte for byte (hashed at the fake) on both stores, the documents
go with the operator's citations setting and come back as `citation` events, every
refusal is an exact JSON 4xx with no upstream request, the body bounds (--max-body-bytes
for plain JSON, --max-upload-bytes with attachments) hold, a large body is parsed in a
worker process, and the demo names what it was sent and cites it."""

from __future__ import annotations

import io
import json
import tempfile
from typing import Any

import aiohttp
import pytest

from sseserver.app_keys import GENERATIONS, PARSER

from .conftest import RunningServer, StartServer
from .support.fake_anthropic import FakeAnthropic
from .support.http_client import Answer
from .support.sample_files import (
    PDF_SENTENCE,
    document,
    gif,
    image,
    pdf,
    png,
    sha256,
    text_document,
)
from .support.sse_client import SSEStream, open_sse

MIB = 1024 * 1024
PNG = png(16, 16)
PDF = pdf(40_000)
NOTES = "Rent is due on the first. Late fees apply after five days."


async def _post(server: RunningServer, body: dict[str, Any]) -> Answer:
    """POST /api/streams; the body as a stream, as a client sends a large one."""
    data = io.BytesIO(json.dumps(body).encode())
    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", data=data, headers={"Content-Type": "application/json"}
    ) as response:
        return Answer(response.status, dict(response.headers), await response.read())


def _ask(*blocks: dict[str, Any], text: str = "What are these?") -> dict[str, Any]:
    return {"messages": [{"role": "user",
                          "content": [*blocks, {"type": "text", "text": text}]}]}


async def _stream(server: RunningServer, body: dict[str, Any]) -> SSEStream:
    answer = await _post(server, body)
    assert answer.status == 201, answer.body
    stream = await open_sse(server.url + json.loads(answer.body)["url"])
    await stream.read_all()
    await stream.close()
    return stream


def _citations(stream: SSEStream) -> list[Any]:
    return [json.loads(e.data) for e in stream.events if e.type == "citation"]


async def test_a_png_and_a_pdf_reach_claude_byte_for_byte_and_are_cited(
    start_server: StartServer, fake_anthropic: FakeAnthropic, backend: dict[str, Any],
) -> None:
    server = await start_server(fake=fake_anthropic, **backend)
    body = _ask(image(PNG), document(PDF, "Lease"), text_document(NOTES, "Notes"))
    stream = await _stream(server, body)

    [sent] = fake_anthropic.requests
    assert sent.files == [("image", "image/png", sha256(PNG)),
                          ("document", "application/pdf", sha256(PDF)),
                          ("document", "text/plain", sha256(NOTES.encode()))]
    content = sent.body["messages"][0]["content"]
    assert [b.get("citations") for b in content] == [
        None, {"enabled": True}, {"enabled": True}, None]
    assert content[1]["title"] == "Lease"
    assert stream.types()[-2:] == ["usage", "done"]
    assert stream.text == ("I read 2 document(s).\nFrom Lease: see the cited passage.\n"
                           "From Notes: see the cited passage.\n")
    assert _citations(stream) == [
        {"url": None, "title": "Lease", "cited_text": PDF_SENTENCE, "type": "page_location",
         "document_index": 0, "start_page_number": 1, "end_page_number": 2},
        {"url": None, "title": "Notes", "cited_text": "Rent is due on the first.",
         "type": "char_location", "document_index": 1, "start_char_index": 0,
         "end_char_index": 25},
    ]


async def test_with_document_citations_off_documents_go_without_them(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    server = await start_server(fake=fake_anthropic, document_citations=False)
    stream = await _stream(server, _ask(document(PDF, "Lease")))
    [sent] = fake_anthropic.requests
    assert sent.body["messages"][0]["content"][0]["citations"] == {"enabled": False}
    assert _citations(stream) == []
    assert stream.text.startswith("I read 1 document(s).")


def _refusal_cases() -> list[Any]:
    assistant = [{"role": "user", "content": "Here."},
                 {"role": "assistant", "content": [document(PDF)]},
                 {"role": "user", "content": "Well?"}]
    at = "messages[0].content[0]"
    return [
        pytest.param(_ask(image(gif(), "image/png")), 400,
                     f"{at}.source.data is not image/png: its first bytes are not that "
                     "type's signature.", id="gif-declared-png"),
        pytest.param(_ask({"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo*"}}), 400,
                     f"{at}.source.data must be base64 (standard alphabet, padded, no line "
                     "breaks) of a file.", id="base64-does-not-decode"),
        pytest.param(_ask({"type": "document", "source": {
            "type": "url", "url": "http://example.com/lease.pdf"}}), 400,
                     f"{at}.source.url must be an https URL.", id="http-url"),
        pytest.param(_ask(document(pdf(33 * MIB))), 413,
                     f"{at}.source: the document is {33 * MIB} bytes; at most {32 * MIB} are "
                     "accepted.", id="33-mib"),
        pytest.param(_ask(*[image(PNG)] * 101), 413,
                     "messages[0].content[100]: a request may hold at most 100 images and "
                     "documents.", id="101-images"),
        pytest.param({"messages": assistant}, 400,
                     "messages[1].content[0].type 'document' is not allowed in an assistant "
                     "message; allowed: text, thinking, redacted_thinking, tool_use, "
                     "server_tool_use, web_search_tool_result, web_fetch_tool_result, "
                     "code_execution_tool_result, bash_code_execution_tool_result, "
                     "text_editor_code_execution_tool_result, tool_search_tool_result, "
                     "mcp_tool_use, mcp_tool_result, mcp_tool_listing, container_upload, "
                     "compaction.", id="document-from-assistant"),
    ]


@pytest.mark.parametrize(("body", "status", "message"), _refusal_cases())
async def test_refusals_name_the_block_and_reach_no_upstream(
    start_server: StartServer, fake_anthropic: FakeAnthropic, body: dict[str, Any],
    status: int, message: str,
) -> None:
    server = await start_server(fake=fake_anthropic)
    answer = await _post(server, body)
    assert answer.status == status
    error_type = "invalid_request_error" if status == 400 else "request_too_large"
    assert json.loads(answer.body) == {"error": {"type": error_type, "message": message}}
    assert fake_anthropic.requests == []
    assert server.app[GENERATIONS].active == 0


async def test_body_bounds_plain_json_and_uploads_apart(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    """--max-body-bytes sizes a body without attachments; one with them may reach
    --max-upload-bytes; beyond that, 413 before it is parsed."""
    server = await start_server(fake=fake_anthropic, max_body_bytes=4096,
                                max_upload_bytes=64 * 1024, max_message_chars=100_000)
    plain = await _post(server, _ask(text="x" * 5000))
    assert (plain.status, json.loads(plain.body)["error"]["message"]) == (
        413, "The body is larger than 4096 bytes.")
    padded = _ask(image(PNG), text="x" * 5000)
    assert (await _post(server, padded)).status == 201
    upload = await _post(server, _ask(document(pdf(60_000))))
    assert (upload.status, json.loads(upload.body)["error"]["message"]) == (
        413, "The body is larger than 65536 bytes.")
    assert len(fake_anthropic.requests) == 0  # the one accepted waits for its subscriber


async def test_a_large_upload_is_parsed_in_a_worker_process(
    start_server: StartServer, fake_anthropic: FakeAnthropic,
) -> None:
    """A body over a megabyte is parsed and checked off the event loop (uploads.py), and
    the request it gives is the one the loop would have made: the bytes arrive intact,
    and a refusal found in the worker is the same JSON error."""
    server = await start_server(fake=fake_anthropic)
    big = pdf(3 * MIB)
    stream = await _stream(server, _ask(document(big, "Big"), image(PNG)))
    assert fake_anthropic.requests[0].files == [
        ("document", "application/pdf", sha256(big)), ("image", "image/png", sha256(PNG))]
    assert _citations(stream)[0]["cited_text"] == PDF_SENTENCE
    refused = await _post(server, _ask(document(big), image(gif(), "image/png")))
    assert json.loads(refused.body) == {"error": {
        "type": "invalid_request_error",
        "message": "messages[0].content[1].source.data is not image/png: its first bytes "
                   "are not that type's signature."}}
    assert server.app[PARSER].offloaded == 2
    assert len(fake_anthropic.requests) == 1


async def test_the_demo_names_what_it_was_sent_and_cites_it(
    start_server: StartServer, backend: dict[str, Any],
) -> None:
    server = await start_server(**backend)
    url_image = {"type": "image", "source": {"type": "url",
                                             "url": "https://example.com/cat.jpg"}}
    body = _ask(image(PNG), document(PDF, "Lease"), text_document(NOTES, "Notes"), url_image)
    stream = await _stream(server, body)
    assert stream.text == (
        "You sent 4 attachments.\n"
        f"1. An image, image/png, {len(PNG)} bytes.\n"
        f"2. A document titled \u201cLease\u201d, application/pdf, {len(PDF)} bytes.\n"
        f"3. A document titled \u201cNotes\u201d, text/plain, {len(NOTES)} bytes, beginning: "
        "\u201cRent is due on the first. Late fees\u201d.\n"
        "4. An image at https://example.com/cat.jpg (not fetched).\n"
    )
    assert _citations(stream) == [
        {"url": None, "title": "Lease", "cited_text": PDF_SENTENCE, "type": "page_location",
         "document_index": 0, "start_page_number": 1, "end_page_number": 2},
        {"url": None, "title": "Notes", "cited_text": "Rent is due on the first.",
         "type": "char_location", "document_index": 1, "start_char_index": 0,
         "end_char_index": 25},
    ]
    types = stream.types()
    assert types.index("citation") > types.index("message")


async def test_healthz_publishes_the_attachment_limits(start_server: StartServer) -> None:
    server = await start_server(max_attachment_bytes=1000, max_upload_bytes=2 * MIB)
    async with aiohttp.ClientSession() as session, session.get(
        server.url + "/healthz"
    ) as response:
        capabilities = (await response.json())["capabilities"]
    assert capabilities["attachments"] == {
        "max_bytes": 1000, "max_upload_bytes": 2 * MIB, "max_count": 100,
        "image_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
        "document_types": ["application/pdf", "text/plain"], "citations": True,
    }


async def test_a_large_upload_goes_through_a_temporary_file_or_memory_alike(
    start_server: StartServer, fake_anthropic: FakeAnthropic, tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large body with a Content-Length is spooled to a temporary file the worker
    reads; a chunked one (no Content-Length) is read into memory. Both reach the API
    byte for byte, and no file is left behind."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    spooled: list[str] = []
    mkstemp = tempfile.mkstemp

    def counted(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, path = mkstemp(*args, **kwargs)
        spooled.append(path)
        return fd, path

    monkeypatch.setattr("tempfile.mkstemp", counted)
    server = await start_server(fake=fake_anthropic)
    big = pdf(2 * MIB)
    await _stream(server, _ask(document(big, "Sized")))
    body = json.dumps(_ask(document(big, "Chunked"))).encode()

    async def chunked() -> Any:
        for start in range(0, len(body), 256 * 1024):
            yield body[start:start + 256 * 1024]

    async with aiohttp.ClientSession() as session, session.post(
        server.url + "/api/streams", data=chunked(),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 201
        stream = await open_sse(server.url + json.loads(await response.read())["url"])
        await stream.read_all()
        await stream.close()
    assert [r.files for r in fake_anthropic.requests] == [
        [("document", "application/pdf", sha256(big))]] * 2
    assert server.app[PARSER].offloaded == 2
    assert len(spooled) == 1  # the sized body only
    assert list(tmp_path.iterdir()) == []
