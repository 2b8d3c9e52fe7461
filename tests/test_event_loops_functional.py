"""In-process servers run on both event loops (conftest.pytest_asyncio_loop_factories):
this checks that the parametrisation really puts the app on each one."""

from __future__ import annotations

import asyncio
import json

import pytest
import uvloop

from .conftest import StartServer
from .support.sse_client import open_sse


async def test_the_app_streams_on_the_loop_its_test_names(
    start_server: StartServer, request: pytest.FixtureRequest,
) -> None:
    server = await start_server(demo_delay_ms=0)
    on_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
    assert on_uvloop == ("[uvloop" in request.node.name), request.node.name
    stream = await open_sse(server.url + "/api/sse?message=hi")
    events = await stream.read_all()
    await stream.close()
    assert [e.type for e in events][-2:] == ["usage", "done"]
    text = "".join(json.loads(e.data) for e in events if e.type == "message")
    assert text.endswith('You asked: "hi"')
