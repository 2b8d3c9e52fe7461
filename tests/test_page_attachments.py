"""Attachments on the chat page (docs/protocol.md, "Attachments"; docs/architecture.md,
"The web client"), in Chromium against the real server: files from the Attach button's
input, a paste and a drop reach the API byte for byte (hashed at the fake), and every
later question sends them again; the question's bubble shows them; a document's
citations show its title, the cited text and a PDF's pages; files the server would refuse
are refused in the page with nothing sent; a reload mid-reply after a large file resumes
the reply without a second POST, with sessionStorage holding references only; a file
whose bytes the browser lost goes as a note, and the user is told.

Also writes screenshots of attachments at desktop and phone width to artifacts/.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import FilePayload, Locator, Page, Request, expect

from .conftest import StartServer
from .support.browser import (
    DESKTOP,
    PHONE,
    ask,
    assert_no_horizontal_scroll,
    last_reply,
    reply_text,
    save_screenshot,
    wait_partial_text,
    wait_status,
)
from .support.fake_anthropic import FakeAnthropic, Reply
from .support.fake_blocks import Text
from .support.sample_files import PDF_SENTENCE, gif, pdf, png, sha256

pytestmark = pytest.mark.browser

MIB: Final = 1024 * 1024
PNG: Final = png(16, 16)
PASTED: Final = png(4, 4, (20, 90, 200))
PDF: Final = pdf(40_000)
NOTES: Final = "Rent is due on the first. Late fees apply after five days.\n"
DB_NAME: Final = "sseserver.files"

# A File built in the page from base64, then handed over as a paste on the composer or
# as a drag that ends in a drop on the transcript; answers which events the page took
# (defaultPrevented) and whether the composer showed the drop while the drag was over.
PASTE: Final = """({name, type, data}) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const clipboardData = new DataTransfer();
    clipboardData.items.add(new File([bytes], name, {type}));
    const event = new ClipboardEvent('paste', {clipboardData, bubbles: true, cancelable: true});
    document.querySelector('#prompt').dispatchEvent(event);
    return event.defaultPrevented;
}"""
DROP: Final = """({name, type, data}) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const dataTransfer = new DataTransfer();
    dataTransfer.items.add(new File([bytes], name, {type}));
    const target = document.querySelector('#transcript');
    const taken = {};
    for (const kind of ['dragenter', 'dragover', 'drop']) {
        const event = new DragEvent(kind, {dataTransfer, bubbles: true, cancelable: true});
        target.dispatchEvent(event);
        taken[kind] = event.defaultPrevented;
        if (kind === 'dragover') {
            taken.highlighted = document.querySelector('#composer').classList.contains('dropping');
        }
    }
    taken.after = document.querySelector('#composer').classList.contains('dropping');
    return taken;
}"""
# sessionStorage's size as the browser counts it against its quota: UTF-16 code units of
# every key and value, two bytes each.
STORAGE_BYTES: Final = """() => {
    let units = 0;
    for (let i = 0; i < sessionStorage.length; i += 1) {
        const key = sessionStorage.key(i);
        units += key.length + sessionStorage.getItem(key).length;
    }
    return units * 2;
}"""
DELETE_DATABASE: Final = """name => new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve(true);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('blocked: the page kept its connection'));
})"""


def payload(name: str, mime_type: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime_type, "buffer": data}


def stream_requests(page: Page, base: str) -> list[str]:
    """Every request of the page to /api/streams, as "METHOD path"."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if "/api/streams" in request.url:
            seen.append(f"{request.method} {request.url.removeprefix(base)}")

    page.on("request", record)
    return seen


async def attach(page: Page, *files: FilePayload) -> None:
    """Choose files with the Attach button's input, once the page shows the button."""
    await expect(page.locator("#attach")).to_be_visible()
    await page.locator("#attach-input").set_input_files(list(files))


async def attach_path(page: Page, path: Path) -> None:
    """Choose a file on disk (a large one: playwright hands Chromium its path)."""
    await expect(page.locator("#attach")).to_be_visible()
    await page.locator("#attach-input").set_input_files(path)


async def hand_over(page: Page, script: str, name: str, mime_type: str, data: bytes) -> Any:
    await expect(page.locator("#attach")).to_be_visible()
    return await page.evaluate(
        script, {"name": name, "type": mime_type, "data": base64.b64encode(data).decode()})


async def chips(where: Locator) -> list[list[str]]:
    """The files shown in a tray or a bubble: [kind, name, size] of each."""
    shown = await where.locator(".attachment").evaluate_all("""chips => chips.map(c => [
        c.dataset.kind, c.querySelector('.attachment-name').textContent,
        c.querySelector('.attachment-size').textContent])""")
    assert isinstance(shown, list)
    return shown


async def passages(reply: Locator) -> list[list[str]]:
    """A reply's document sources: [title, page ("" when none), cited text] of each."""
    shown = await reply.locator(".sources li.passage").evaluate_all("""items => items.map(li => [
        li.querySelector('.passage-title').textContent,
        li.querySelector('.passage-page')?.textContent ?? '',
        li.querySelector('.passage-text')?.textContent ?? ''])""")
    assert isinstance(shown, list)
    return shown


async def thumbnail_width(chip: Locator) -> int:
    """The natural width of a chip's picture, once it has loaded (under the page's CSP)."""
    width = await chip.locator("img").evaluate(
        "img => img.decode().then(() => img.naturalWidth)")
    assert isinstance(width, int)
    return width


def file_blocks(content: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(type, title) of each block of a user message's content."""
    return [(block["type"], block.get("title")) for block in content]


async def test_files_from_the_button_a_paste_and_a_drop_reach_claude_byte_for_byte(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """Each way in gives the same blocks; every later question sends the earlier files
    again (the API keeps nothing), and the bubble shows what each question sent."""
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    streams = stream_requests(page, server.url)
    tray = page.locator("#attachments")

    await attach(page, payload("dot.png", "image/png", PNG),
                 payload("lease.pdf", "application/pdf", PDF))
    await expect(tray.locator(".attachment")).to_have_count(2)
    assert await chips(tray) == [["image", "dot.png", f"{len(PNG)} bytes"],
                                 ["document", "lease.pdf", "39.1 KiB"]]
    assert await thumbnail_width(tray.locator(".attachment").first) == 16
    assert streams == []  # nothing leaves the page before Send
    await ask(page, "What are these?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(tray).to_be_hidden()
    await expect(tray.locator(".attachment")).to_have_count(0)
    [first] = fake_anthropic.requests
    assert first.files == [("image", "image/png", sha256(PNG)),
                           ("document", "application/pdf", sha256(PDF))]
    content = first.body["messages"][0]["content"]
    assert file_blocks(content) == [("image", None), ("document", "lease.pdf"), ("text", None)]
    assert content[2]["text"] == "What are these?"
    bubble = page.locator("#transcript .user-turn").last
    assert await chips(bubble) == [["image", "dot.png", f"{len(PNG)} bytes"],
                                   ["document", "lease.pdf", "39.1 KiB"]]
    assert await thumbnail_width(bubble.locator(".attachment").first) == 16
    await expect(bubble.locator(".bubble")).to_have_text("What are these?")
    # The fake cites the PDF by its first page.
    assert await passages(reply) == [["lease.pdf", "p. 1", PDF_SENTENCE]]

    # A pasted image: the page takes the paste, so nothing lands in the box.
    assert await hand_over(page, PASTE, "image.png", "image/png", PASTED) is True
    await expect(tray.locator(".attachment")).to_have_count(1)
    assert await chips(tray) == [["image", "image.png", f"{len(PASTED)} bytes"]]
    await expect(page.locator("#prompt")).to_have_value("")
    await ask(page, "And this?")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].files == [
        ("image", "image/png", sha256(PNG)), ("document", "application/pdf", sha256(PDF)),
        ("image", "image/png", sha256(PASTED))]

    # A dropped Markdown file goes as a text document, its text exactly; a file needs no
    # question to be sent.
    taken = await hand_over(page, DROP, "notes.md", "text/markdown", NOTES.encode())
    assert taken == {"dragenter": False, "dragover": True, "highlighted": True,
                     "drop": True, "after": False}
    await expect(tray.locator(".attachment")).to_have_count(1)
    assert await chips(tray) == [["document", "notes.md", f"{len(NOTES)} bytes"]]
    await page.locator("#send").click()
    reply = last_reply(page)
    await wait_status(reply, "done")
    bubble = page.locator("#transcript .user-turn").last
    assert await chips(bubble) == [["document", "notes.md", f"{len(NOTES)} bytes"]]
    await expect(bubble.locator(".bubble")).to_be_hidden()
    third = fake_anthropic.requests[2]
    assert third.files == [
        ("image", "image/png", sha256(PNG)), ("document", "application/pdf", sha256(PDF)),
        ("image", "image/png", sha256(PASTED)),
        ("document", "text/plain", sha256(NOTES.encode()))]
    messages = third.body["messages"]
    assert [file_blocks(m["content"]) for m in messages if m["role"] == "user"] == [
        [("image", None), ("document", "lease.pdf"), ("text", None)],
        [("image", None), ("text", None)],
        [("document", "notes.md")],
    ]
    assert messages[4]["content"][0]["source"] == {
        "type": "text", "media_type": "text/plain", "data": NOTES}
    assert await passages(reply) == [["lease.pdf", "p. 1", PDF_SENTENCE],
                                     ["notes.md", "", "Rent is due on the first."]]
    assert len(streams) == 3 + 3  # a POST and its GET per question, no more


async def test_a_citation_shows_the_document_its_pages_and_the_cited_text(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    """A PDF's pages are shown as "p. 3" or "pp. 3–4" (the API's end page is exclusive);
    a text document's passage has no page. Each passage gets its own number."""
    def pages(start: int, end: int, text: str) -> dict[str, Any]:
        return {"type": "page_location", "cited_text": text, "document_index": 0,
                "document_title": "lease.pdf", "start_page_number": start,
                "end_page_number": end, "file_id": None}

    chars = {"type": "char_location", "cited_text": "Late fees apply after five days.",
             "document_index": 1, "document_title": "notes.txt", "start_char_index": 26,
             "end_char_index": 58, "file_id": None}
    fake_anthropic.enqueue(Reply(blocks=(
        Text(["Rent is monthly."], (pages(3, 5, "Rent is paid monthly."),)),
        Text([" It is due early."], (pages(1, 2, PDF_SENTENCE),)),
        Text([" Late fees apply."], (chars,)),
    )))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await attach(page, payload("lease.pdf", "application/pdf", PDF),
                 payload("notes.txt", "text/plain", NOTES.encode()))
    await expect(page.locator("#attachments .attachment")).to_have_count(2)
    await ask(page, "When is rent due?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    assert await passages(reply) == [
        ["lease.pdf", "pp. 3\u20134", "Rent is paid monthly."],
        ["lease.pdf", "p. 1", PDF_SENTENCE],
        ["notes.txt", "", "Late fees apply after five days."],
    ]
    markers = reply.locator(".text-part sup.cite")
    await expect(markers).to_have_text(["[1]", "[2]", "[3]"])
    assert [await m.get_attribute("title") for m in await markers.all()] == [
        "lease.pdf, pp. 3\u20134", "lease.pdf, p. 1", "notes.txt"]
    assert await reply_text(reply) == "Rent is monthly.[1] It is due early.[2] Late fees apply.[3]"


async def test_files_the_server_would_refuse_are_refused_in_the_page(
    page: Page, start_server: StartServer
) -> None:
    """Over --max-attachment-bytes, a type the server does not take, content that is not
    its type, or more files than a request may hold (the conversation's included): the
    page says why, names the file, and never sends it."""
    server = await start_server(max_attachment_bytes=1000)
    await page.goto(server.url)
    streams = stream_requests(page, server.url)
    bodies: list[Any] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "POST" else None)
    tray = page.locator("#attachments")
    message = page.locator("#attach-message")
    await expect(page.locator("#attach-input")).to_have_attribute(
        "accept", "image/jpeg,image/png,image/gif,image/webp,application/pdf,text/*,.txt,.md,.csv")

    await attach(page, payload("big.pdf", "application/pdf", pdf(2000)))
    await expect(message).to_have_text(
        "big.pdf is 2.0 KiB: the server accepts files of at most 1000 bytes.")
    await attach(page, payload("archive.zip", "application/zip", b"PK\x03\x04" + bytes(60)))
    await expect(message).to_have_text(
        "archive.zip (application/zip) cannot be attached: only JPEG, PNG, GIF, WebP, PDF "
        "or text files can.")
    await attach(page, payload("photo.png", "image/png", b"not a picture at all"),
                 payload("dot.gif", "image/gif", gif()))
    await expect(message).to_have_text(
        "photo.png is not a PNG image: its content is not that type's.")
    assert await chips(tray) == [["image", "dot.gif", f"{len(gif())} bytes"]]
    assert streams == []
    # Sent, the question holds the one file accepted, and nothing of the others.
    await ask(page, "What is this?")
    await wait_status(last_reply(page), "done")
    [body] = bodies
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif",
                                     "data": base64.b64encode(gif()).decode()}},
        {"type": "text", "text": "What is this?"}]}]

    # The conversation holds one file: a hundred more are one too many for a request.
    many = [payload(f"dot{n:03d}.png", "image/png", png(2, 2, (n, 7, 7))) for n in range(100)]
    await attach(page, *many)
    await expect(message).to_have_text(
        "dot099.png was not attached: a conversation may hold at most 100 files, and this "
        "one has 100.")
    await expect(tray.locator(".attachment")).to_have_count(99)
    # A removal says nothing more.
    await tray.get_by_role("button", name="Remove dot000.png").click()
    await expect(message).to_be_hidden()
    await expect(tray.locator(".attachment")).to_have_count(98)
    assert len(bodies) == 1
    assert len(streams) == 2, streams


async def test_a_reload_mid_reply_after_a_large_file_resumes_without_a_second_post(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer, tmp_path: Path
) -> None:
    """The reply in flight resumes from its last event id, exactly; sessionStorage holds a
    reference, not the file; the next question sends the file again from IndexedDB."""
    big = pdf(5 * MIB)
    path = tmp_path / "report.pdf"
    path.write_bytes(big)
    chunks = [f"w{n:03d} " for n in range(150)]
    full = "".join(chunks)
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.03), Reply(chunks=["Read again."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await attach_path(page, path)
    await expect(page.locator("#attachments .attachment")).to_have_count(1)
    await ask(page, "Summarise the report")
    await wait_partial_text(page, full)
    streams = stream_requests(page, server.url)
    assert await page.evaluate(STORAGE_BYTES) < 64 * 1024
    await page.reload()

    reply = last_reply(page)
    await wait_status(reply, "done")
    assert await reply_text(reply) == full
    [resumed] = streams
    assert resumed.startswith("GET /api/streams/"), streams
    assert "?lastEventId=" in resumed, streams
    assert len(fake_anthropic.requests) == 1
    assert fake_anthropic.requests[0].files == [("document", "application/pdf", sha256(big))]
    bubble = page.locator("#transcript .user-turn").last
    assert await chips(bubble) == [["document", "report.pdf", "5.0 MiB"]]
    stored = await page.evaluate(STORAGE_BYTES)
    assert stored < 64 * 1024, stored
    saved = json.loads(await page.evaluate("sessionStorage.getItem('sseserver.chat')"))
    assert saved["turns"][0]["files"] == [{"kind": "document", "type": "application/pdf",
                                           "name": "report.pdf", "size": len(big),
                                           "hash": sha256(big)}]

    await ask(page, "Again")
    await wait_status(last_reply(page), "done")
    assert fake_anthropic.requests[1].files == [("document", "application/pdf", sha256(big))]
    await expect(page.locator("#attach-message")).to_be_hidden()


async def test_a_file_the_browser_no_longer_has_goes_as_a_note_and_the_user_is_told(
    page: Page, fake_anthropic: FakeAnthropic, start_server: StartServer
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["A dot."]), Reply(chunks=["Gone, then."]))
    server = await start_server(fake=fake_anthropic)
    await page.goto(server.url)
    await attach(page, payload("dot.png", "image/png", PNG))
    await expect(page.locator("#attachments .attachment")).to_have_count(1)
    await ask(page, "What is this?")
    await wait_status(last_reply(page), "done")
    assert await page.evaluate(DELETE_DATABASE, DB_NAME) is True
    await page.reload()

    bubble = page.locator("#transcript .user-turn").first
    await expect(bubble.locator(".attachment")).to_have_class("attachment missing")
    await ask(page, "And now?")
    await wait_status(last_reply(page), "done")
    told = (f"This browser no longer has dot.png ({len(PNG)} bytes): a note was sent in place "
            "of it. Attach it again if Claude needs it.")
    await expect(page.locator("#attach-message")).to_have_text(told)
    assert fake_anthropic.requests[1].body["messages"][0]["content"] == [
        {"type": "text", "text": f'[The image "dot.png" (image/png, {len(PNG)} bytes) was '
                                 "attached here, but this browser no longer has it, so it is "
                                 "not sent again.]"},
        {"type": "text", "text": "What is this?"},
    ]


async def test_a_conversation_with_a_20_mib_pdf_keeps_within_the_storage_quota(
    page: Page, start_server: StartServer, tmp_path: Path
) -> None:
    """sessionStorage's quota is a few MiB: the page stores a reference, and the
    conversation survives a reload (a QuotaExceededError would fail the page's checks)."""
    big = pdf(20 * MIB)
    path = tmp_path / "archive.pdf"
    path.write_bytes(big)
    server = await start_server()
    await page.goto(server.url)
    await attach_path(page, path)
    await expect(page.locator("#attachments .attachment")).to_have_count(1)
    await ask(page, "What is in it?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    # The demo's numbered line is a Markdown list item; the marker follows its text.
    assert await reply_text(reply) == (
        "You sent 1 attachment.\n"
        f"A document titled \u201carchive.pdf\u201d, application/pdf, {len(big)} bytes.[1]")
    assert await passages(reply) == [["archive.pdf", "p. 1", PDF_SENTENCE]]
    assert await page.evaluate(STORAGE_BYTES) < 64 * 1024

    await page.reload()
    await expect(page.locator("#transcript .user-turn")).to_have_count(1)
    assert await chips(page.locator("#transcript .user-turn")) == [
        ["document", "archive.pdf", "20.0 MiB"]]
    await expect(page.locator("#transcript .attachment.missing")).to_have_count(0)
    assert await passages(last_reply(page)) == [["archive.pdf", "p. 1", PDF_SENTENCE]]


async def test_screenshots_of_attachments_at_desktop_and_phone_width(
    page: Page, start_server: StartServer
) -> None:
    """The demo answers files offline; at phone width nothing scrolls sideways, however
    long a file's name."""
    server = await start_server()
    await page.goto(server.url)
    long_name = "quarterly-report-of-the-tenants-association-final-version-2.pdf"
    await attach(page, payload("whiteboard.png", "image/png", png(64, 48)),
                 payload(long_name, "application/pdf", PDF),
                 payload("notes.txt", "text/plain", NOTES.encode()))
    await expect(page.locator("#attachments .attachment")).to_have_count(3)
    await ask(page, "What did I send?")
    reply = last_reply(page)
    await wait_status(reply, "done")
    await expect(reply.locator(".sources li.passage")).to_have_count(2)
    await attach(page, payload("diagram.png", "image/png", png(32, 32, (40, 160, 90))))
    await expect(page.locator("#attachments .attachment")).to_have_count(1)
    await page.locator("#transcript .user-turn").scroll_into_view_if_needed()
    await save_screenshot(page, "chat-attachments.png")
    await page.set_viewport_size(PHONE)
    await assert_no_horizontal_scroll(page)
    await reply.locator(".sources").scroll_into_view_if_needed()
    await save_screenshot(page, "chat-attachments-phone.png")
    await page.set_viewport_size(DESKTOP)
