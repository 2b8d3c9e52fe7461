"""What the logs may hold: a request's method, path and status, never a secret (the access
token, the API key) nor a user's words (a question travels in the query string, which the
access log leaves out: access_log.py), even at `--log-level debug`."""

from __future__ import annotations

import logging
from typing import Final

import pytest

from sseserver.__main__ import configure_logging

from .conftest import StartServer
from .fake_anthropic import FakeAnthropic, Reply
from .http_client import request
from .sse_client import open_sse

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
    await request("GET", f"{guarded.url}/?token={TOKEN}")
    await request("GET", guarded.url + "/?token=wrong-guess-of-the-token")
    await request("GET", guarded.url + "/api/sse?message=hi",
                  headers={"Authorization": "Bearer wrong-guess-of-the-token"})
    async with await open_sse(guarded.url + "/api/sse?message=a-private-question",
                              headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
        await stream.read_all()
    assert "generation id=" in caplog.text  # the logs were captured
    for secret in (TOKEN, fake_anthropic.api_key, "wrong-guess", "a-private-question"):
        assert secret not in caplog.text
    assert TOKEN not in repr(guarded.settings)


def test_debug_logging_keeps_the_sdk_from_logging_request_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_LOG", raising=False)
    saved = {name: logging.getLogger(name).level for name in ("anthropic", "httpx2", "")}
    try:
        configure_logging("debug")
        assert logging.getLogger("sseserver").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("anthropic._base_client").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("httpx2").isEnabledFor(logging.DEBUG)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
