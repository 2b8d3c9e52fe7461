"""The fake API's images and documents (tests/support/fake_files.py) are faithful: what the SDK
sends for them is accepted, what the API refuses is refused with a 400 that names the
block, and a request with documents is answered with citations the SDK's own types
declare, so tests through the fake prove something about the real API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.support.fake_anthropic import MESSAGES_PATH, FakeAnthropic, running_fake_anthropic

from .support.sample_files import (
    PDF_SENTENCE,
    b64,
    document,
    gif,
    image,
    pdf,
    png,
    sha256,
    text_document,
)
from .test_fake_content import EVENTS, _assert_declared, _raw_events, assert_message_param

MODEL = "claude-sonnet-5-5"
PNG = png()
PDF = pdf()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with running_fake_anthropic() as server:
        yield server


def _ask(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "Summarise."}]}]


async def _status(fake: FakeAnthropic, messages: list[dict[str, Any]]) -> tuple[int, Any]:
    headers = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 64, "messages": messages, "stream": True}
    async with aiohttp.ClientSession() as session, session.post(
        fake.base_url + MESSAGES_PATH, json=body, headers=headers
    ) as response:
        return response.status, (await response.json() if response.status != 200 else None)


CITED = {"citations": {"enabled": True}}


async def test_a_request_with_documents_is_answered_with_declared_citations(
    fake: FakeAnthropic,
) -> None:
    messages = _ask(image(PNG), document(PDF, "Lease") | CITED,
                    text_document("Pay on time. Or else.", "Notes") | CITED,
                    document(PDF, "Uncited"))
    assert_message_param(messages[0])
    events = await _raw_events(fake, {"model": MODEL, "max_tokens": 64, "messages": messages,
                                      "stream": True})
    for raw in events:
        if raw["type"] != "ping":
            _assert_declared(EVENTS.validate_python(raw))
    citations = [e["delta"]["citation"] for e in events
                 if e.get("delta", {}).get("type") == "citations_delta"]
    assert citations == [
        {"type": "page_location", "cited_text": PDF_SENTENCE, "document_index": 0,
         "document_title": "Lease", "start_page_number": 1, "end_page_number": 2,
         "file_id": None},
        {"type": "char_location", "cited_text": "Pay on time.", "document_index": 1,
         "document_title": "Notes", "start_char_index": 0, "end_char_index": 12,
         "file_id": None},
    ]
    assert fake.requests[0].files == [
        ("image", "image/png", sha256(PNG)), ("document", "application/pdf", sha256(PDF)),
        ("document", "text/plain", sha256(b"Pay on time. Or else.")),
        ("document", "application/pdf", sha256(PDF))]


async def test_the_sdk_sends_files_the_fake_accepts(fake: FakeAnthropic) -> None:
    async with anthropic.AsyncAnthropic(api_key=fake.api_key, base_url=fake.base_url,
                                        max_retries=0) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=_ask(  # type: ignore[arg-type]
            image(gif(), "image/gif"), document(PDF, "Lease") | CITED,
            {"type": "image", "source": {"type": "url", "url": "https://a.example/a.png"}}))
    texts = [b.text for b in message.content if b.type == "text"]
    assert texts == ["I read 1 document(s).\n", "From Lease: see the cited passage.\n"]


AT = "messages.0.content.0"
REFUSED = [
    pytest.param(image(gif(), "image/png"), f"{AT}.source.base64.data: Image does not "
                 "match the provided media type image/png", id="gif-as-png"),
    pytest.param({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                              "data": b64(PNG)[:-2]}},
                 f"{AT}.source.base64.data: Input should be valid base64", id="bad-base64"),
    pytest.param(image(PNG, "image/bmp"), f"{AT}.source.base64.media_type: Input should be "
                 "'image/jpeg' or 'image/png' or 'image/gif' or 'image/webp'", id="bmp"),
    pytest.param(document(PNG), "The PDF specified was not valid.", id="png-as-pdf"),
    pytest.param({"type": "document", "source": {"type": "text", "media_type": "text/html",
                                                 "data": "<p>"}},
                 f"{AT}.source.text.media_type: Input should be 'text/plain'", id="html"),
    pytest.param(document(PDF) | {"citations": {"enabled": "yes"}},
                 f"{AT}.citations.enabled: Input should be a valid boolean",
                 id="citations-not-bool"),
    pytest.param(document(PDF) | {"citations": True},
                 f"{AT}.citations.enabled: Input should be a valid boolean",
                 id="citations-not-object"),
]


@pytest.mark.parametrize(("block", "message"), REFUSED)
async def test_files_the_api_refuses(fake: FakeAnthropic, block: dict[str, Any],
                                     message: str) -> None:
    status, body = await _status(fake, _ask(block))
    assert (status, body["error"]) == (400, {"type": "invalid_request_error",
                                             "message": message})


async def test_at_most_100_images(fake: FakeAnthropic) -> None:
    assert (await _status(fake, _ask(*[image(PNG)] * 100)))[0] == 200
    status, body = await _status(fake, _ask(*[image(PNG)] * 101))
    assert (status, body["error"]["message"]) == (
        400, "messages: A maximum of 100 images may be provided in one request.")


async def test_a_document_in_an_assistant_message_is_refused(fake: FakeAnthropic) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Hi"},
                                      {"role": "assistant", "content": [document(PDF)]}]
    status, body = await _status(fake, messages)
    assert status == 400
    assert body["error"]["message"].startswith("messages.1.content.0.type: Input tag "
                                               "'document'")
    assert json.dumps(body)  # a JSON error, as the API answers
