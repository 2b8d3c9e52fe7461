"""S6's baseline client (bench/tool_client.py) against the fake: it answers every tool call,
verifies each final reply, and the fake times each continuation it sends."""

from __future__ import annotations

from bench.tool_client import _run
from tests.support.fake_anthropic import Reply, running_fake_anthropic


async def test_the_tool_client_answers_each_call_and_the_fake_times_it() -> None:
    async with running_fake_anthropic() as fake:
        fake.tool_calls = 3
        fake.default_reply = Reply(chunks=("word ",) * 5)
        report = await _run(fake.base_url, connections=2, duration=0.3, expect=5)
    completed = report["streams"]["completed"]
    assert completed >= 2
    assert report["streams"]["started"] == completed
    assert report["requests"] == 4 * completed  # three calls, then the answer
    assert report["verification"] == {"ok": True, "wrong_count": 0}
    assert len(fake.tool_gaps) == 3 * completed
    tools = fake.requests[0].body["tools"]
    assert [tool["name"] for tool in tools] == ["noop"]
    assert "handler" not in tools[0]


async def test_a_reply_of_the_wrong_length_fails_verification() -> None:
    async with running_fake_anthropic() as fake:
        fake.tool_calls = 1
        fake.default_reply = Reply(chunks=("word ",) * 4)
        report = await _run(fake.base_url, connections=1, duration=0.1, expect=5)
    assert report["verification"]["ok"] is False
    assert report["verification"]["wrong_count"] == report["streams"]["completed"]
