"""S7's uploader (bench/uploads.py) must send what it says (a valid PDF upload the server
accepts, parsed in its worker processes), count every answer, tell a 503 for loop lag
from one for body memory, and fail its run when any upload is not created and deleted."""

from __future__ import annotations

import json
import os

from bench.uploads import PROMPT, Tally, descendants, run, upload_body
from sseserver.app_keys import GENERATIONS, PARSER
from sseserver.attachments import base64_size, head_bytes
from sseserver.config import Settings
from sseserver.validation import request_from_json

from .conftest import StartServer
from .support.waiting import until

MIB = 1024 * 1024


def test_the_body_is_a_pdf_upload_the_server_accepts() -> None:
    body = upload_body(2 * MIB)
    request = request_from_json(body, Settings())
    content = request.messages[0].content
    assert not isinstance(content, str)
    document, question = content
    assert question == {"type": "text", "text": PROMPT}
    data = document["source"]["data"]
    assert document["source"]["media_type"] == "application/pdf"
    assert base64_size(data) == 2 * MIB
    assert head_bytes(data).startswith(b"%PDF-")


def test_a_503_is_counted_by_its_message_and_fails_the_run() -> None:
    tally = Tally()
    created = json.dumps({"id": "s", "url": "/api/streams/s"}).encode()
    tally.answer(201, created, 0.5)
    tally.deleted[204] += 1
    assert tally.report()["ok"]
    busy = {"error": {"type": "overloaded_error",
                      "message": "The server is busy; try again in a moment."}}
    tally.answer(503, json.dumps(busy).encode(), 0.01)
    tally.answer(503, b"not json", 0.01)
    report = tally.report()
    assert report["refused_503"] == 2
    assert report["refusals_503"] == {"The server is busy; try again in a moment.": 1,
                                      "not json": 1}
    assert report["statuses"] == {"201": 1, "503": 2}
    assert not report["ok"]


def test_descendants_are_the_whole_tree_and_nothing_else() -> None:
    pairs = [(2, 1), (3, 2), (4, 3), (5, 1), (6, 9), (9, 8)]
    assert descendants(2, pairs) == {2, 3, 4}
    assert descendants(7, pairs) == {7}


async def test_uploads_are_created_deleted_and_parsed_off_the_loop(
    start_server: StartServer,
) -> None:
    server = await start_server()
    report = await run(server.url, concurrency=2, size=2 * MIB, start_after=0, duration=0.3,
                       server_pid=os.getpid())
    assert report["ok"], report
    assert report["done"] >= 2
    assert report["statuses"] == {"201": report["done"]}
    assert report["deleted"] == {"204": report["done"]}
    assert server.app[PARSER].offloaded == report["done"]
    await until(lambda: server.app[GENERATIONS].active == 0, within=2,
                what="every stream deleted ends")
    assert report["in_flight_bytes"] == 2 * report["body_bytes"]
    # This process and the worker pool it started at the first upload.
    assert report["processes"] >= 3
    assert report["rss_peak"] >= report["rss_start"] > 0
