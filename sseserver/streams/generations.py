"""Generations: each runs as its own task, decoupled from any connection, and appends its
frames to the stream store; subscribers read them from there (see `subscriber.py`).

    provider.stream() ──deltas──▶ pump ──frames──▶ store ──▶ subscribers (any number)
                                   ▲                 │
                                   └── watchdog ◀────┘ signals: IDLE, BUSY, CANCEL

The watchdog cancels the pump on CANCEL (DELETE) at once, and when no subscriber has been
attached for `--resume-window` seconds. Cancelling the pump closes the provider's iterator,
which closes the upstream HTTP request (SPEC 4).

Limits (SPEC 3, 7) count generations, not connections: `--max-streams` for the process and
`--max-streams-per-client` per client address. A resumed or extra subscriber of a running
generation starts nothing, so it counts nothing. At shutdown `drain()` refuses new
generations, lets running ones finish for `--shutdown-grace` seconds, then cancels the rest,
which ends each of their streams with a `server_shutdown` error event.

With a store in another process (Redis) an append can fail: the backend is unreachable
(`StoreUnavailable`) or the stream was ended for us because this process was taken for
dead (`StreamLost`). Nobody could read what comes next, so the generation stops and the
provider's iterator is closed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from ..config import Settings
from ..metrics import Metrics
from ..providers import GenerationRequest, Provider, ProviderError, Usage
from ..sse import encode_event, to_json
from .base import Signal, StoreUnavailable, StreamLost, StreamStore, event_id, new_stream_id

log = logging.getLogger("sseserver.generations")

Ending = Literal["done", "cancelled", "client_gone", "error", "shutdown"]

# A generation started by POST /api/streams waits at least this long for its first
# subscriber, even with --resume-window 0 (which is about subscribers that left).
FIRST_SUBSCRIBER_GRACE: Final = 5.0


class AtCapacity(Exception):
    """--max-streams generations are running already."""


class ClientLimit(Exception):
    """This client runs --max-streams-per-client generations already."""


class ShuttingDown(Exception):
    """The server is stopping and starts no new generation."""


@dataclass(slots=True)
class _Progress:
    """What one generation has done so far; ends up in its log line."""

    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    events: int = 0
    usage: Usage = field(default_factory=lambda: Usage(0, 0, None))
    deltas: int = 0
    ending: Ending | None = None
    error_type: str | None = None


class Generations:
    def __init__(
        self,
        store: StreamStore,
        provider: Provider,
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._provider = provider
        self._settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._per_client: dict[str, int] = {}  # running generations by client address
        self._closing = False
        self._metrics = metrics if metrics is not None else Metrics()
        self._metrics.count_generations(lambda: len(self._tasks))

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(self, request: GenerationRequest, client: str = "") -> str:
        """Create the stream and start generating into it; returns its id.
        `client` is the address the per-client limit counts against."""
        if self._closing:
            raise ShuttingDown
        if len(self._tasks) >= self._settings.max_streams:
            raise AtCapacity
        per_client = self._settings.max_streams_per_client
        if per_client and self._per_client.get(client, 0) >= per_client:
            raise ClientLimit
        stream_id = new_stream_id()
        await self._store.create(stream_id)
        task = asyncio.create_task(self._run(stream_id, request), name=f"generation {stream_id}")
        self._tasks[stream_id] = task
        self._per_client[client] = self._per_client.get(client, 0) + 1
        task.add_done_callback(lambda _: self._forget(stream_id, client))
        self._metrics.started.inc()
        return stream_id

    def _forget(self, stream_id: str, client: str) -> None:
        self._tasks.pop(stream_id, None)
        left = self._per_client.get(client, 0) - 1
        if left > 0:
            self._per_client[client] = left
        else:  # no entry per idle client: the map stays as small as what runs
            self._per_client.pop(client, None)

    async def cancel(self, stream_id: str) -> bool:
        return await self._store.request_cancel(stream_id)

    async def drain(self, grace: float) -> None:
        """Shutdown (SPEC 7): refuse new generations, give running ones `grace` seconds to
        finish on their own, then cancel the rest; each of those streams then ends with a
        `server_shutdown` error event, and its upstream request is closed."""
        self._closing = True
        tasks = list(self._tasks.values())
        if tasks and grace > 0:
            log.info("waiting up to %.1fs for %d running generation(s)", grace, len(tasks))
            await asyncio.wait(tasks, timeout=grace)
        if self._tasks:
            log.info("ending %d generation(s) with server_shutdown", len(self._tasks))
        await self.close()

    async def close(self) -> None:
        """Cancel every running generation and wait until each has finished its stream."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, stream_id: str, request: GenerationRequest) -> None:
        progress = _Progress()
        pump = asyncio.current_task()
        assert pump is not None
        watchdog = asyncio.create_task(self._watch(stream_id, pump, progress))
        try:
            await self._pump(stream_id, request, progress)
        except (StoreUnavailable, StreamLost) as exc:
            progress.ending = "error"
            log.warning("generation %s stopped: the stream store failed: %s", stream_id, exc)
        finally:
            watchdog.cancel()
            try:
                await self._store.finish(stream_id, keep_for=self._settings.resume_window)
            except StoreUnavailable as exc:  # the store ends it later, by itself
                log.warning("generation %s: could not finish its stream: %s", stream_id, exc)
            self._log(stream_id, request, progress)

    async def _pump(self, stream_id: str, request: GenerationRequest, progress: _Progress) -> None:
        def frame(event: str, data: object) -> bytes:
            encoded = encode_event(event, to_json(data), event_id(stream_id, progress.events))
            progress.events += 1
            return encoded

        append = self._store.append
        meta = {"stream": stream_id, "model": request.model, "provider": self._provider.name}
        await append(stream_id, frame("meta", meta))
        try:
            # aclosing: an append that fails leaves the loop with an exception, and the
            # upstream request must be closed then too, not when the iterator is collected.
            async with contextlib.aclosing(self._provider.stream(request)) as items:
                async for item in items:
                    if isinstance(item, Usage):
                        progress.usage = item
                    elif item:
                        if progress.first_token is None:
                            progress.first_token = time.monotonic()
                        progress.deltas += 1
                        await append(stream_id, frame("message", item))
        except ProviderError as exc:
            progress.ending = "error"
            progress.error_type = exc.type
            await append(stream_id, frame("error", {"type": exc.type, "message": exc.message}))
            return
        except asyncio.CancelledError:
            current = asyncio.current_task()
            assert current is not None
            if progress.ending is None:  # not ours: the server is shutting down
                progress.ending = "shutdown"
                shutdown = {
                    "type": "server_shutdown",
                    "message": "The server is shutting down; try again in a moment.",
                }
                with contextlib.suppress(StoreUnavailable, StreamLost):
                    await append(stream_id, frame("error", shutdown))
                raise
            current.uncancel()  # ours (DELETE or nobody listening): finish the stream
            usage = Usage(progress.usage.input_tokens, progress.deltas, "cancelled")
        else:
            progress.ending = "done"
            usage = progress.usage
        totals = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "stop_reason": usage.stop_reason,
        }
        await append(stream_id, frame("usage", totals))
        await append(stream_id, frame("done", "[DONE]"))

    async def _watch(self, stream_id: str, pump: asyncio.Task[None], progress: _Progress) -> None:
        window = self._settings.resume_window
        # Until the first subscriber comes; then None (no deadline) while someone listens.
        idle_for: float | None = max(window, FIRST_SUBSCRIBER_GRACE)
        while True:
            try:
                async with asyncio.timeout(idle_for):
                    signal = await self._store.next_signal(stream_id)
            except TimeoutError:
                progress.ending = "client_gone"
                pump.cancel()
                return
            if signal is Signal.CANCEL:
                progress.ending = "cancelled"
                pump.cancel()
                return
            idle_for = window if signal is Signal.IDLE else None

    def _log(self, stream_id: str, request: GenerationRequest, progress: _Progress) -> None:
        """The generation's one log line and its metrics (SPEC 8); no message text."""
        duration = time.monotonic() - progress.started
        ttft = (
            progress.first_token - progress.started if progress.first_token is not None else None
        )
        output_tokens = (
            progress.usage.output_tokens if progress.ending == "done" else progress.deltas
        )
        log.info(
            "generation id=%s provider=%s model=%s ttft=%s events=%d output_tokens=%d "
            "duration=%.0fms ended=%s",
            stream_id, self._provider.name, request.model,
            f"{ttft * 1000:.0f}ms" if ttft is not None else "-", progress.events,
            output_tokens, duration * 1000, progress.ending,
        )
        self._metrics.generation_finished(
            progress.ending or "error", ttft=ttft, duration=duration,
            output_tokens=output_tokens, error_type=progress.error_type,
        )
