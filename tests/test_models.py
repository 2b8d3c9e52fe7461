"""The model catalog (providers/models.py): the Models API's ModelInfo read as the SDK's
types shape it, the SDK's knowledge where it cannot be read, the bounded wait for the
first fetch, and a refresh that keeps what the API said when it fails later."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from sseserver.errors import BadRequest
from sseserver.providers import ChatMessage, GenerationRequest
from sseserver.providers.messages_api import UpstreamStatusError
from sseserver.providers.models import (
    EFFORTS,
    Capabilities,
    ModelCatalog,
    everything,
    from_model_info,
    from_sdk,
    nothing,
)

from .support.fake_models import capabilities, model_info

TABLE = {"old-model": "June 30th, 2026", "later-model": "January 22nd, 2099",
         "odd-model": "sometime"}


def _request(**fields: Any) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", "hi"),), "m", 100, **fields)


@pytest.mark.parametrize(("caps", "expected"), [
    (capabilities(), Capabilities(EFFORTS, True, True, True, True, "models_api")),
    (capabilities(effort=("low", "medium"), structured_outputs=False, web_fetch=False,
                  code_execution=False, compaction=False),
     Capabilities(("low", "medium"), False, False, False, False, "models_api")),
    (capabilities(effort=None, web_fetch=True),
     Capabilities((), True, True, True, True, "models_api")),
])
def test_model_info_is_read_as_the_sdk_shapes_it(caps: dict[str, Any],
                                                 expected: Capabilities) -> None:
    assert from_model_info(model_info("m", caps)) == expected


def test_server_tools_unsupported_means_no_web_fetch() -> None:
    caps = capabilities(code_execution=False, web_search=False)
    assert from_model_info(model_info("m", caps)) == Capabilities(
        EFFORTS, True, False, False, True, "models_api")


@pytest.mark.parametrize("info", [
    [], {"capabilities": []}, {"capabilities": {"effort": 1}},
    {"capabilities": capabilities() | {"server_tools": None}},
    {"capabilities": capabilities() | {"structured_outputs": {"supported": "yes"}}},
])
def test_another_shape_is_a_value_error(info: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each shape has its own message
        from_model_info(info)


def test_no_capabilities_is_none() -> None:
    assert from_model_info({"id": "m", "capabilities": None}) is None


@pytest.mark.parametrize(("model", "expected"), [
    ("old-model", nothing("sdk")), ("later-model", everything("sdk")),
    ("odd-model", everything("sdk")), ("new-model", everything("sdk")),
])
def test_the_sdks_table(model: str, expected: Capabilities) -> None:
    assert from_sdk(model, TABLE, date(2026, 12, 6)) == expected


async def test_a_request_waits_for_the_first_fetch() -> None:
    async def fetch(path: str) -> Any:
        await asyncio.sleep(0.05)
        return model_info("m", capabilities(effort=("low",)))

    catalog = ModelCatalog(["m"], fetch, {})
    catalog.start()
    try:
        assert catalog.snapshot() == {}
        with pytest.raises(BadRequest, match="does not support effort 'max'"):
            await catalog.check(_request(output_config={"effort": "max"}))
        assert catalog.snapshot()["m"]["effort"] == ["low"]
    finally:
        await catalog.close()


async def test_the_wait_is_bounded() -> None:
    started = asyncio.Event()

    async def fetch(path: str) -> Any:
        started.set()
        await asyncio.sleep(60)

    catalog = ModelCatalog(["m"], fetch, {}, wait=0.05)
    catalog.start()
    try:
        await started.wait()
        assert await catalog.capabilities("m") == everything("sdk")
        await catalog.check(_request(output_config={"effort": "max"}))  # allowed
    finally:
        await catalog.close()


async def test_a_request_asking_for_nothing_never_waits() -> None:
    async def fetch(path: str) -> Any:
        await asyncio.sleep(60)

    catalog = ModelCatalog(["m"], fetch, {}, wait=60)
    catalog.start()
    try:
        await asyncio.wait_for(catalog.check(_request(web_search=3, tool_search=True)), 1)
    finally:
        await catalog.close()


async def test_a_failed_refresh_keeps_what_the_api_said() -> None:
    answers: list[Any] = [model_info("m", capabilities(structured_outputs=False)),
                          UpstreamStatusError(500, "api_error", "down"),
                          UpstreamStatusError(401, "authentication_error", "no")]
    paths: list[str] = []

    async def fetch(path: str) -> Any:
        paths.append(path)
        answer = answers.pop(0) if answers else model_info("m", capabilities())
        if isinstance(answer, Exception):
            raise answer
        return answer

    catalog = ModelCatalog(["m"], fetch, {}, refresh=0.01)
    catalog.start()
    try:
        for _ in range(200):
            if not answers:
                break
            await asyncio.sleep(0.01)
        assert catalog.snapshot()["m"]["structured_outputs"] is False
        assert catalog.snapshot()["m"]["source"] == "models_api"
    finally:
        await catalog.close()
    assert paths[0] == "/v1/models/m"


async def test_a_model_id_is_one_path_segment() -> None:
    paths: list[str] = []

    async def fetch(path: str) -> Any:
        paths.append(path)
        return model_info("m", capabilities())

    catalog = ModelCatalog(["a/../b?c"], fetch, {})
    catalog.start()
    await catalog.capabilities("a/../b?c")
    await catalog.close()
    assert paths == ["/v1/models/a%2F..%2Fb%3Fc"]


def test_the_demo_can_do_everything() -> None:
    catalog = ModelCatalog(["a", "b", "a"], None, {})
    assert catalog.snapshot() == {"a": everything("demo").wire(), "b": everything("demo").wire()}


async def test_a_passing_failure_is_tried_again_sooner() -> None:
    """A 429 at start-up: the SDK's knowledge until the retry reads the API."""
    answers: list[Any] = [UpstreamStatusError(429, "rate_limit_error", "slow down")]

    async def fetch(path: str) -> Any:
        if answers:
            raise answers.pop(0)
        return model_info("m", capabilities(structured_outputs=False))

    catalog = ModelCatalog(["m"], fetch, {}, refresh=3600, retry=0.01)
    catalog.start()
    try:
        for _ in range(200):
            if catalog.snapshot().get("m", {}).get("source") == "models_api":
                break
            await asyncio.sleep(0.01)
        assert catalog.snapshot()["m"]["structured_outputs"] is False
    finally:
        await catalog.close()


async def test_a_refusal_of_the_key_is_not_asked_again_soon() -> None:
    calls: list[str] = []

    async def fetch(path: str) -> Any:
        calls.append(path)
        raise UpstreamStatusError(403, "permission_error", "no")

    catalog = ModelCatalog(["m"], fetch, {}, refresh=3600, retry=0.01)
    catalog.start()
    try:
        assert (await catalog.capabilities("m")).source == "sdk"
        await asyncio.sleep(0.1)
        assert calls == ["/v1/models/m"]
    finally:
        await catalog.close()
