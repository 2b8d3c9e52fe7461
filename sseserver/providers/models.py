"""What each allowed model can do, from the Models API (`GET /v1/models/{id}`, the SDK's
`ModelInfo.capabilities`), so that a request asking a model for what it lacks is refused
here with a 400 naming the model and the capability, before anything goes upstream
(docs/protocol.md, "Thinking, tools and caching", "Capabilities").

The catalog is fetched when the server starts, in the background (start-up never waits for
it), and again every REFRESH seconds. A request that asks for a capability before its model
is known waits for the first fetch, at most WAIT seconds. Where the key cannot read the
Models API (401, 403, 404, or the API cannot be reached), the SDK's own knowledge stands in
(`source: "sdk"`): a model its deprecation table says has reached its end of life can do
nothing; any other is taken as able to do everything, and the API decides. The JSON is read
as the SDK's types describe it, without importing the SDK (deprecations.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp

from ..errors import BadRequest
from .base import GenerationRequest
from .messages_api import UpstreamStatusError

log = logging.getLogger("sseserver.models")

EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")
REFRESH: Final = 3600.0
# A fetch that failed for a passing reason (429, 5xx, the network) is tried again sooner.
RETRY: Final = 60.0
# The Models API's answers that say the key may not read it: no use asking again soon.
_SETTLED_STATUSES: Final = frozenset({401, 403, 404})
WAIT: Final = 5.0
Source = Literal["models_api", "sdk", "demo"]
# GET {base}{path} -> the JSON body (MessagesAPI.get_json).
Fetch = Callable[[str], Awaitable[Any]]
_TRANSPORT_ERRORS: Final = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a request may ask of one model; `effort` is its levels, empty when it has
    no effort control."""

    effort: tuple[str, ...]
    structured_outputs: bool
    web_fetch: bool
    code_execution: bool
    compaction: bool
    source: Source

    def wire(self) -> dict[str, Any]:
        """/healthz's shape (docs/protocol.md, "Capabilities")."""
        return {
            "effort": list(self.effort) if self.effort else False,
            "structured_outputs": self.structured_outputs,
            "web_fetch": self.web_fetch,
            "code_execution": self.code_execution,
            "compaction": self.compaction,
            "source": self.source,
        }


def everything(source: Source) -> Capabilities:
    return Capabilities(EFFORTS, True, True, True, True, source)


def nothing(source: Source) -> Capabilities:
    return Capabilities((), False, False, False, False, source)


def _supported(value: object, default: bool = False) -> bool:
    """A CapabilitySupport's `supported`; `default` when the entry is absent."""
    if value is None:
        return default
    if not isinstance(value, Mapping) or not isinstance(value.get("supported"), bool):
        raise ValueError("not a CapabilitySupport")
    return bool(value["supported"])


def from_model_info(info: object) -> Capabilities | None:
    """A ModelInfo's capabilities, or None when it has none. `server_tools` names web
    search and code execution only: web fetch is read there when the API lists it, and
    is otherwise taken as supported (the API decides). A compaction strategy the API
    does not list is likewise left to it. Raises ValueError for another shape."""
    if not isinstance(info, Mapping):
        raise ValueError("not a ModelInfo")
    caps = info.get("capabilities")
    if caps is None:
        return None
    if not isinstance(caps, Mapping):
        raise ValueError("capabilities is not an object")
    effort = caps.get("effort")
    if not isinstance(effort, Mapping):
        raise ValueError("effort is not an object")
    levels = tuple(level for level in EFFORTS if _supported(effort.get(level)))
    server_tools = caps.get("server_tools")
    context = caps.get("context_management")
    if not isinstance(server_tools, Mapping) or not isinstance(context, Mapping):
        raise ValueError("server_tools or context_management is not an object")
    return Capabilities(
        effort=levels if _supported(effort) else (),
        structured_outputs=_supported(caps.get("structured_outputs")),
        web_fetch=_supported(server_tools, True)
        and _supported(server_tools.get("web_fetch"), True),
        code_execution=_supported(server_tools.get("code_execution")),
        compaction=_supported(context) and _supported(context.get("compact_20260112"), True),
        source="models_api",
    )


_ORDINAL: Final = re.compile(r"(\d+)(st|nd|rd|th)\b")


def _end_of_life(text: str) -> date | None:
    """The SDK's table's dates ("June 30th, 2026"); None for one it writes otherwise."""
    try:
        return datetime.strptime(_ORDINAL.sub(r"\1", text.strip()), "%B %d, %Y").date()
    except ValueError:
        return None


def from_sdk(model: str, table: Mapping[str, str], today: date) -> Capabilities:
    """The SDK's knowledge: a model past its end of life can do nothing; of any other it
    knows nothing, so everything is allowed and the API decides."""
    end = _end_of_life(table[model]) if model in table else None
    return nothing("sdk") if end is not None and end <= today else everything("sdk")


class ModelCatalog:
    """The allowed models' capabilities, fetched in the background and refreshed."""

    def __init__(
        self, models: Sequence[str], fetch: Fetch | None, table: Mapping[str, str], *,
        refresh: float = REFRESH, wait: float = WAIT, retry: float = RETRY,
    ) -> None:
        """`fetch` None: the demo provider, which can do everything asked of it. `table`:
        the SDK's deprecated models and their end of life (deprecations.py)."""
        self._models = tuple(dict.fromkeys(models))
        self._fetch = fetch
        self._refresh = refresh
        self._retry = retry
        self._wait = wait
        self._table = table
        self._known: dict[str, Capabilities] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if fetch is None:
            self._known = {model: everything("demo") for model in self._models}
            self._ready.set()

    def start(self) -> None:
        if self._fetch is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="model-catalog")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            found = await asyncio.gather(*(self._read(model) for model in self._models))
            self._known.update(zip(self._models, (caps for caps, _ in found), strict=True))
            self._ready.set()
            settled = all(settled for _, settled in found)
            await asyncio.sleep(self._refresh if settled else min(self._retry, self._refresh))

    async def _read(self, model: str) -> tuple[Capabilities, bool]:
        """One model's capabilities, and whether that is settled until the next refresh;
        on failure the last ones read from the API, else the SDK's knowledge. The log
        names the model and the status, never the key."""
        assert self._fetch is not None
        why: str
        settled = True
        try:
            found = from_model_info(await self._fetch(f"/v1/models/{quote(model, safe='')}"))
            if found is not None:
                return found, True
            why = "the Models API gave no capabilities"
        except UpstreamStatusError as exc:
            why = f"the Models API answered {exc.status}"
            settled = exc.status in _SETTLED_STATUSES
        except _TRANSPORT_ERRORS as exc:
            why = f"the Models API could not be reached ({type(exc).__name__})"
            settled = False
        except ValueError:
            why = "the Models API's answer is not a ModelInfo"
        previous = self._known.get(model)
        if previous is not None and previous.source == "models_api":
            log.warning("model %s: %s; keeping its capabilities read earlier", model, why)
            return previous, settled
        log.info("model %s: %s; using the SDK's knowledge of it", model, why)
        return from_sdk(model, self._table, datetime.now(UTC).date()), settled

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """/healthz's `models`: each allowed model's capabilities, once known."""
        return {model: self._known[model].wire() for model in self._models
                if model in self._known}

    async def capabilities(self, model: str) -> Capabilities:
        """The model's capabilities, waiting for the first fetch at most `wait` seconds;
        the SDK's knowledge when it has not come by then."""
        if model not in self._known:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self._wait)
        known = self._known.get(model)
        if known is not None:
            return known
        return from_sdk(model, self._table, datetime.now(UTC).date())

    async def check(self, request: GenerationRequest) -> None:
        """Refuse (400) a request asking its model for what the model lacks. A request
        that asks for none of these capabilities never waits."""
        config = request.output_config or {}
        effort = config.get("effort")
        wants = (effort is not None or "format" in config or request.web_fetch > 0
                 or request.code_execution or request.compaction)
        if not wants:
            return
        caps = await self.capabilities(request.model)
        model = request.model
        if effort is not None and effort not in caps.effort:
            levels = ", ".join(caps.effort)
            raise BadRequest(
                f"Model {model!r} does not support effort {effort!r}"
                + (f" (its levels: {levels})." if levels else " (it has no effort levels).")
            )
        if "format" in config and not caps.structured_outputs:
            raise BadRequest(
                f"Model {model!r} does not support structured outputs (output_schema)."
            )
        if request.web_fetch > 0 and not caps.web_fetch:
            raise BadRequest(f"Model {model!r} does not support web fetch (web_fetch).")
        if request.code_execution and not caps.code_execution:
            raise BadRequest(
                f"Model {model!r} does not support code execution (code_execution)."
            )
        if request.compaction and not caps.compaction:
            raise BadRequest(
                f"Model {model!r} does not support compaction, which this server asks for "
                "on every request (--compaction); ask for another model."
            )
