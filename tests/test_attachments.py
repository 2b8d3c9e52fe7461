"""Images and documents in a request (attachments.py, through validation.py): every
accepted shape, as it goes to the API, and every refusal with its exact status and message
(docs/protocol.md, "Attachments"). Over HTTP, with nothing reaching the upstream:
tests/test_attachments_functional.py."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
from typing import Any

import pytest

from sseserver.attachments import MAX_ATTACHMENTS, attachment_count, base64_size
from sseserver.config import Settings
from sseserver.errors import BadRequest, Refused
from sseserver.uploads import DETACHED_CHARS, BodyFile, _Pickler, _Unpickler
from sseserver.validation import request_from_json

from .support.sample_files import b64, document, gif, image, pdf, png, text_document

SETTINGS = dataclasses.replace(Settings(), max_attachment_bytes=4096, max_message_chars=100)
PNG = png()
PDF = pdf()
AT = "messages[0].content[0]"


def _body(*blocks: dict[str, Any], role_blocks: bool = False) -> bytes:
    content = [*blocks, {"type": "text", "text": "What is this?"}]
    return json.dumps({"messages": [{"role": "user", "content": content}]}).encode()


def _sent(body: bytes, settings: Settings = SETTINGS) -> list[dict[str, Any]]:
    message = request_from_json(body, settings).messages[0]
    assert not isinstance(message.content, str)
    return list(message.content)


def _refused(body: bytes, settings: Settings = SETTINGS) -> tuple[int, str]:
    with pytest.raises(Refused) as refused:
        request_from_json(body, settings)
    return refused.value.status, refused.value.message


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256)) * 3])
def test_base64_size_is_the_decoded_size(data: bytes) -> None:
    assert base64_size(base64.b64encode(data).decode()) == len(data)


@pytest.mark.parametrize("text", [
    "abc", "ab=c", "a===", "QUJD\n", "QU JD", "QUJD=", "QUJ-", "QUJ_", "é===", "QQ==QUJD",
])
def test_base64_size_refuses_what_would_not_decode_strictly(text: str) -> None:
    assert base64_size(text) is None


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(image(PNG), id="png"),
        pytest.param(image(gif(), "image/gif"), id="gif"),
        pytest.param(image(b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"), id="jpeg"),
        pytest.param(image(b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8), "image/webp"),
                     id="webp"),
        pytest.param({"type": "image", "source": {"type": "url",
                                                  "url": "https://example.com/a.png"}},
                     id="image-url"),
    ],
)
def test_images_go_as_they_came(block: dict[str, Any]) -> None:
    assert _sent(_body(block))[0] == block


@pytest.mark.parametrize(
    ("block", "citations"),
    [
        pytest.param(document(PDF), True, id="pdf"),
        pytest.param(document(PDF, "Lease") | {"context": "Signed in May."}, True,
                     id="pdf-title-context"),
        pytest.param(text_document("Rent is due monthly.", "Notes"), True, id="text"),
        pytest.param({"type": "document", "source": {"type": "url",
                                                     "url": "https://example.com/a.pdf"}},
                     True, id="pdf-url"),
        pytest.param(document(PDF), False, id="citations-off"),
    ],
)
def test_documents_go_with_the_operators_citations(block: dict[str, Any],
                                                   citations: bool) -> None:
    settings = dataclasses.replace(SETTINGS, document_citations=citations)
    assert _sent(_body(block), settings)[0] == block | {"citations": {"enabled": citations}}


def test_a_file_at_the_size_limit_is_accepted_and_counted() -> None:
    body = _body(image(PNG + bytes(4096 - len(PNG))), document(pdf(4096)))
    request = request_from_json(body, SETTINGS)
    assert attachment_count(request) == 2


def _source(kind: str, **source: Any) -> dict[str, Any]:
    return {"type": kind, "source": source}


PNG64 = b64(PNG)
FORM = ("data must be base64 (standard alphabet, padded, no line breaks) of a file.")
REFUSALS = [
    pytest.param(image(gif(), "image/png"), 400,
                 f"{AT}.source.data is not image/png: its first bytes are not that "
                 "type's signature.", id="gif-declared-png"),
    pytest.param(image(PNG, "image/jpeg"), 400,
                 f"{AT}.source.data is not image/jpeg: its first bytes are not that "
                 "type's signature.", id="png-declared-jpeg"),
    pytest.param(document(PNG), 400,
                 f"{AT}.source.data is not application/pdf: its first bytes are not "
                 "that type's signature.", id="png-declared-pdf"),
    pytest.param(_source("image", type="base64", media_type="image/png", data=PNG64[:-1]),
                 400, f"{AT}.source.{FORM}", id="base64-cut"),
    pytest.param(_source("image", type="base64", media_type="image/png",
                         data=PNG64[:20] + "\n" + PNG64[20:]), 400, f"{AT}.source.{FORM}",
                 id="base64-line-break"),
    pytest.param(_source("image", type="base64", media_type="image/png",
                         data=PNG64.replace("A", "-")), 400, f"{AT}.source.{FORM}",
                 id="base64-url-alphabet"),
    pytest.param(_source("image", type="base64", media_type="image/png", data=""), 400,
                 f"{AT}.source.{FORM}", id="base64-empty"),
    pytest.param(_source("image", type="base64", media_type="image/png", data=5), 400,
                 f"{AT}.source.{FORM}", id="base64-number"),
    pytest.param(_source("image", type="base64", media_type="image/bmp", data=PNG64), 400,
                 f"{AT}.source.media_type must be one of: image/jpeg, image/png, image/gif, "
                 "image/webp.", id="image-type-unknown"),
    pytest.param(_source("document", type="base64", media_type="text/plain", data=PNG64),
                 400, f"{AT}.source.media_type must be one of: application/pdf.",
                 id="document-base64-not-pdf"),
    pytest.param(_source("image", type="url", url="http://example.com/a.png"), 400,
                 f"{AT}.source.url must be an https URL.", id="http-url"),
    pytest.param(_source("image", type="url", url="https:///a.png"), 400,
                 f"{AT}.source.url must be an https URL.", id="url-without-host"),
    pytest.param(_source("document", type="url", url="https://a.example/x y.pdf"), 400,
                 f"{AT}.source.url must be an https URL of at most 2048 characters, "
                 "without spaces.", id="url-space"),
    pytest.param(_source("image", type="url", url="https://a.example/" + "x" * 2048), 400,
                 f"{AT}.source.url must be an https URL of at most 2048 characters, "
                 "without spaces.", id="url-too-long"),
    pytest.param(_source("image", type="url", url="https://a.example/a", extra=1), 400,
                 f"{AT}.source must have exactly: type, url.", id="url-extra-key"),
    pytest.param(_source("image", type="text", media_type="text/plain", data="x"), 400,
                 f"{AT}.source must be an object whose type is one of: base64, url.",
                 id="image-text-source"),
    pytest.param({"type": "image", "source": "https://a.example/a.png"}, 400,
                 f"{AT}.source must be an object whose type is one of: base64, url.",
                 id="source-string"),
    pytest.param(_source("document", type="text", media_type="text/markdown", data="x"), 400,
                 f"{AT}.source.media_type must be 'text/plain' for a text source.",
                 id="text-type"),
    pytest.param(_source("document", type="text", media_type="text/plain", data=" "), 400,
                 f"{AT}.source.data must be the document's text, not empty.", id="text-blank"),
    pytest.param(document(PDF) | {"citations": {"enabled": True}}, 400,
                 f"{AT} (document) has unknown 'citations'.", id="client-citations"),
    pytest.param(document(PDF) | {"cache_control": {"type": "ephemeral"}}, 400,
                 f"{AT} (document) has unknown 'cache_control'.", id="cache-control"),
    pytest.param(document(PDF) | {"title": 5}, 400, f"{AT}.title must be a string.",
                 id="title-number"),
    pytest.param(document(PDF) | {"title": "t" * 501}, 413,
                 f"{AT}.title is longer than 500 characters.", id="title-long"),
    pytest.param({"type": "image"}, 400, f"{AT} (image) lacks source.", id="no-source"),
    pytest.param(image(PNG + bytes(4097 - len(PNG))), 413,
                 f"{AT}.source: the image is 4097 bytes; at most 4096 are accepted.",
                 id="image-too-large"),
    pytest.param(document(pdf(4097)), 413,
                 f"{AT}.source: the document is 4097 bytes; at most 4096 are accepted.",
                 id="pdf-too-large"),
    pytest.param(text_document("é" * 2049), 413,
                 f"{AT}.source: the document is 4098 bytes; at most 4096 are accepted.",
                 id="text-too-large"),
]


@pytest.mark.parametrize(("block", "status", "message"), REFUSALS)
def test_refused(block: dict[str, Any], status: int, message: str) -> None:
    assert _refused(_body(block)) == (status, message)


def test_more_than_the_most_attachments_are_refused_naming_the_first_too_many() -> None:
    body = _body(*[image(PNG)] * (MAX_ATTACHMENTS + 1))
    assert _refused(body) == (413, f"messages[0].content[{MAX_ATTACHMENTS}]: a request may "
                              f"hold at most {MAX_ATTACHMENTS} images and documents.")
    assert attachment_count(request_from_json(_body(*[image(PNG)] * MAX_ATTACHMENTS),
                                              SETTINGS)) == MAX_ATTACHMENTS


def test_attachments_are_counted_across_messages() -> None:
    half = MAX_ATTACHMENTS // 2
    messages = [
        {"role": "user", "content": [image(PNG)] * half},
        {"role": "assistant", "content": "Nice."},
        {"role": "user", "content": [image(PNG)] * (half + 1)},
    ]
    body = json.dumps({"messages": messages}).encode()
    assert _refused(body) == (413, f"messages[2].content[{half}]: a request may hold at most "
                              f"{MAX_ATTACHMENTS} images and documents.")


@pytest.mark.parametrize("kind", ["image", "document"])
def test_attachments_are_the_users_only(kind: str) -> None:
    block = image(PNG) if kind == "image" else document(PDF)
    messages = [{"role": "user", "content": "Look."},
                {"role": "assistant", "content": [block]}]
    assert _refused(json.dumps({"messages": messages}).encode()) == (
        400, f"messages[1].content[0].type {kind!r} is not allowed in an assistant message; "
        "allowed: text, thinking, redacted_thinking, tool_use, server_tool_use, "
        "web_search_tool_result, web_fetch_tool_result, code_execution_tool_result, "
        "bash_code_execution_tool_result, text_editor_code_execution_tool_result, "
        "tool_search_tool_result, mcp_tool_use, mcp_tool_result, mcp_tool_listing, "
        "container_upload, compaction.")


def test_a_tool_results_image_is_checked_as_strictly() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "current_time", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [image(gif(), "image/png")]}
    messages = [{"role": "user", "content": "Time?"},
                {"role": "assistant", "content": [call]},
                {"role": "user", "content": [result]}]
    assert _refused(json.dumps({"messages": messages}).encode()) == (
        400, "messages[2].content[0].content[0].source.data is not image/png: its "
        "first bytes are not that type's signature.")


def test_long_strings_come_back_from_a_worker_as_places_in_the_body_file() -> None:
    """What a worker hands back names each long base64 string by its place in the body
    file, and is read back into equal strings; short or absent strings travel whole."""
    data = "QUJD" * (DETACHED_CHARS // 2)
    other = "x" * DETACHED_CHARS  # not in the body: pickled as it is
    body = json.dumps({"a": data, "b": "short"}).encode()
    file = BodyFile(len(body))
    try:
        for start in range(0, len(body), 1000):
            file.write(body[start:start + 1000])
        out = io.BytesIO()
        _Pickler(out, body).dump({"a": data, "b": "short", "c": other})
        assert len(out.getvalue()) < len(other) + 1000
        assert _Unpickler(out.getvalue(), file).load() == {"a": data, "b": "short", "c": other}
        with pytest.raises(BadRequest, match="longer than its Content-Length"):
            file.write(b"x")
    finally:
        file.close()
    assert not os.path.exists(file.path)
