"""Generations: each runs as its own task, decoupled from any connection, and appends its
frames to the stream store; subscribers read them from there (see `subscriber.py`).

    provider.stream() ──deltas──▶ pump ──frames──▶ store ──▶ subscribers (any number)
                                   ▲                 │
                                   └── watchdog ◀────┘ signals: IDLE, BUSY, CANCEL

The watchdog cancels the pump on CANCEL (DELETE) at once, and when no subscriber has been
attached for `--resume-window` seconds. Cancelling the pump closes the provider's iterator,
which closes the upstream HTTP request (docs/protocol.md, "Disconnects"). The watchdog is
not a task: the store calls it with each signal, and the idle deadline is one timer handle,
so a generation costs one task and no more (memory per open stream).

Limits count generations, not connections: `--max-streams` for the process and
`--max-streams-per-client` per client address, or per user when the server has users (by default
DEFAULT_PER_CLIENT beyond loopback, none on it). With quotas shared by the fleet (Redis), the
per-client count is also taken there, exactly across processes; a user's budget (budgets.py) is
reserved at the start and settled at the end. A resumed or extra subscriber of a running generation
starts nothing, so it counts nothing. At shutdown `drain()` refuses new generations, lets running
ones finish for `--shutdown-grace` seconds, then cancels the rest, which ends each of their streams
with a `server_shutdown` error event.

With a store in another process (Redis) an append can fail: the backend is unreachable
(`StoreUnavailable`) or the stream was ended for us because this process was taken for
dead (`StreamLost`). Nobody could read what comes next, so the generation stops and the
provider's iterator is closed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from .access_log import loggable
from .budgets import Budgets, Hold
from .config import Settings, is_loopback
from .errors import (
    AtCapacity,
    ClientLimit,
    Overloaded,
    ProviderError,
    ShuttingDown,
    StoreUnavailable,
    StreamLost,
)
from .identity import User
from .ids import new_stream_id
from .metrics import Metrics
from .option_table import DEFAULT_PER_CLIENT
from .overload import LoopLag
from .providers import GenerationRequest, Provider, Usage
from .providers.models import ModelCatalog
from .sse import StreamFrames
from .store.base import Cancel, Signal, StreamStore
from .store.quotas import MemoryQuotas, Quotas

log = logging.getLogger("sseserver.generations")

Ending = Literal["done", "cancelled", "client_gone", "error", "shutdown", "lost"]
# Why a stream ended with stop_reason "cancelled": its `usage` says so in `cancel_reason`.
CANCEL_REASONS: Final[dict[Ending, str]] = {"cancelled": "deleted", "client_gone": "no_reader"}

# What an unknown block's type may be to become a metric label (else "other").
_TYPE_NAME: Final = re.compile(r"[a-z0-9_]{1,64}")
# A generation started by POST /api/streams waits at least this long for its first
# subscriber, even with --resume-window 0 (which is about subscribers that left).
FIRST_SUBSCRIBER_GRACE: Final = 5.0


@dataclass(slots=True)
class _Progress:
    """What one generation has done so far; ends up in its log line."""

    client: str  # the address that started it, for its log line
    key: str = ""  # what the per-client limit counts: the address, or the user
    user: User | None = None
    slot: bool = False  # it holds one of the fleet's slots for `key` (quotas)
    hold: Hold | None = None  # what it holds back of its user's budget
    watchdog: _Watchdog | None = None
    started: float = field(default_factory=time.monotonic)
    running: bool = False  # its task has taken its first step
    # Set when its first subscriber attaches, for a generation that waits for one before
    # calling the upstream (one started by POST); None once it has come, or never waited.
    subscribed: asyncio.Future[None] | None = None
    called: float = 0.0  # when the upstream was called: time to first token counts from it
    first_token: float | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0, None))
    deltas: int = 0
    ending: Ending | None = None
    error_type: str | None = None


class _Watchdog:
    """Stops a generation's pump on CANCEL or LOST, or when nobody has been subscribed
    for --resume-window seconds (from the start: at least FIRST_SUBSCRIBER_GRACE)."""

    __slots__ = ("_deadline", "_progress", "_pump", "_window")

    def __init__(self, pump: asyncio.Task[None], progress: _Progress, window: float) -> None:
        self._pump = pump
        self._progress = progress
        self._window = window
        self._deadline: asyncio.TimerHandle | None = None
        self._idle(max(window, FIRST_SUBSCRIBER_GRACE))

    def on_signal(self, signal: Signal) -> None:
        if signal is Signal.CANCEL:
            self._stop_pump("cancelled")
        elif signal is Signal.LOST:
            self._stop_pump("lost")
        elif signal is Signal.IDLE:
            self._idle(self._window)
        else:  # BUSY: no deadline while someone listens
            self.stop()
            subscribed = self._progress.subscribed
            if subscribed is not None and not subscribed.done():
                subscribed.set_result(None)

    def stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _idle(self, seconds: float) -> None:
        self.stop()
        self._deadline = asyncio.get_running_loop().call_later(
            seconds, self._stop_pump, "client_gone"
        )

    def _stop_pump(self, ending: Ending) -> None:
        self.stop()
        if self._pump.done() or self._progress.ending is not None:
            return  # over already, or ending its own way
        if not self._progress.running:
            # Cancelled before its first step, a task's coroutine never runs, finally
            # blocks included: the stream would never end. That step is already queued.
            asyncio.get_running_loop().call_soon(self._stop_pump, ending)
            return
        self._progress.ending = ending  # read by the pump: its own cancel, not shutdown
        self._pump.cancel()


class Generations:
    def __init__(
        self,
        store: StreamStore,
        provider: Provider,
        settings: Settings,
        metrics: Metrics | None = None,
        lag: LoopLag | None = None,
        quotas: Quotas | None = None,
        budgets: Budgets | None = None,
        models: ModelCatalog | None = None,
    ) -> None:
        self._store = store
        self._quotas = quotas if quotas is not None else MemoryQuotas()
        self._budgets = budgets
        self._models = models
        self._provider = provider
        self._settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Generations running or being created, in all and by client address.
        self._running = 0
        self._per_client: dict[str, int] = {}
        self._closing = False
        self._lag = lag
        self._metrics = metrics if metrics is not None else Metrics()
        self._metrics.count_generations(lambda: len(self._tasks))
        self._warned_types: set[str] = set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(
        self, request: GenerationRequest, client: str = "", *, user: User | None = None,
        wait_for_subscriber: bool = False,
    ) -> str:
        """Create the stream and start generating into it; returns its id.
        `client` is the address the per-client limit counts against, and `user` (when the
        server has users) the user it counts instead, who owns the stream. With
        `wait_for_subscriber` the upstream is called only once a first subscriber has
        attached: a stream nobody opens costs no token, and it still counts against the
        limits until the first-subscriber grace frees it."""
        if self._closing:
            raise ShuttingDown
        if self._models is not None:
            # What the model lacks is refused before anything is counted or sent.
            await self._models.check(request)
        if self._running >= self._settings.max_streams:
            raise AtCapacity
        if self._lag is not None and self._lag.overloaded:
            raise Overloaded
        key = user.limit_key if user is not None else client
        per_client = self._client_limit(key)
        if per_client and self._per_client.get(key, 0) >= per_client:
            raise ClientLimit
        # Counted before the first await: the check and the count are one step, so
        # simultaneous requests cannot all pass the check while one of them waits for
        # the store (docs/operations.md, "Limits and timeouts").
        self._count(key, 1)
        progress = _Progress(client, key, user)
        stream_id = new_stream_id()
        try:
            if per_client:  # across the fleet too: one step in Redis
                if not await self._quotas.take_slot(key, per_client):
                    raise ClientLimit
                progress.slot = True
            if user is not None and self._budgets is not None:
                progress.hold = await self._budgets.reserve(user, request)
            await self._store.create(stream_id, user.id if user is not None else "")
        except BaseException:  # refused, the store failed, or the client left meanwhile
            self._count(key, -1)
            if progress.slot:
                self._quotas.give_slot(key)
            if progress.hold is not None and self._budgets is not None:
                await self._budgets.settle(progress.hold, None)
            raise
        if wait_for_subscriber:
            progress.subscribed = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run(stream_id, request, progress), name="generation")
        # At once, before any await: nobody can join a stream whose id is not out yet.
        watchdog = progress.watchdog = _Watchdog(task, progress, self._settings.resume_window)
        self._store.watch(stream_id, watchdog.on_signal)
        self._tasks[stream_id] = task
        self._metrics.started.inc()
        return stream_id

    def _client_limit(self, client: str) -> int:
        """--max-streams-per-client, or when it is not set: none for loopback (and for a
        peer without an address: a Unix socket), DEFAULT_PER_CLIENT for the rest."""
        configured = self._settings.max_streams_per_client
        if configured is not None:
            return configured
        return 0 if not client or is_loopback(client) else DEFAULT_PER_CLIENT

    def _forget(self, stream_id: str, progress: _Progress) -> None:
        """The generation is over: its timer, its task and its place in the limits go.
        Letting go of the watchdog breaks the task → progress → watchdog → task cycle, so
        the generation is freed at once, not by a collection of the oldest generation."""
        watchdog, progress.watchdog = progress.watchdog, None
        if watchdog is not None:
            watchdog.stop()
        if self._tasks.pop(stream_id, None) is not None:
            self._count(progress.key, -1)
            if progress.slot:
                progress.slot = False
                self._quotas.give_slot(progress.key)

    def _count(self, client: str, step: int) -> None:
        self._running += step
        left = self._per_client.get(client, 0) + step
        if left > 0:
            self._per_client[client] = left
        else:  # no entry per idle client: the map stays as small as what runs
            self._per_client.pop(client, None)

    async def cancel(self, stream_id: str) -> Cancel:
        """Stop a generation now, wherever it runs: cancelled, already ended, or unknown."""
        return await self._store.request_cancel(stream_id)

    async def ended(self, stream_id: str, timeout: float) -> None:
        """Wait up to `timeout` for a generation of this process to be over, its limits'
        slots freed (its `_forget` runs before this returns); at once when it runs elsewhere
        or not at all."""
        task = self._tasks.get(stream_id)
        if task is not None:
            await asyncio.wait([task], timeout=timeout)

    async def drain(self, grace: float) -> None:
        """Shutdown: refuse new generations, give running ones `grace` seconds to
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
        # A task cancelled before its first step never ran its `finally`.
        self._tasks.clear()
        self._running = 0
        self._per_client.clear()

    async def _run(self, stream_id: str, request: GenerationRequest, progress: _Progress) -> None:
        """The generation: meta, the provider's items as frames, then usage and done (or
        an error), into the store; always finishing the stream and its log line. One
        coroutine, so a running generation holds one frame."""
        progress.running = True
        frames = StreamFrames(stream_id)
        store = self._store
        try:
            try:
                await store.append(stream_id, frames.event("meta", {
                    "stream": stream_id, "model": request.model, "provider": self._provider.name,
                }))
                if progress.subscribed is not None:
                    await progress.subscribed  # cancelled by the watchdog if nobody comes
                    progress.subscribed = None
                progress.called = time.monotonic()
                items = self._provider.stream(request)
                try:
                    async for item in items:
                        if isinstance(item, str):  # a text delta: nearly every item
                            if item:
                                if progress.first_token is None:
                                    progress.first_token = time.monotonic()
                                progress.deltas += 1
                                await store.append(stream_id, frames.message(item))
                        elif isinstance(item, Usage):
                            progress.usage = item
                        else:  # thinking, tool, ... (docs/protocol.md, "Events")
                            if item.name == "thinking":
                                progress.deltas += 1  # output too, counted when cancelled
                            elif item.name == "block":
                                self._unknown_block(item.data)
                            await store.append(stream_id, frames.event(item.name, item.data))
                finally:
                    # Closes the upstream request now, also when an append failed, not
                    # when the iterator is collected.
                    await items.aclose()
                progress.ending = "done"
                await self._append_end(stream_id, frames, progress, progress.usage)
            except ProviderError as exc:
                progress.ending = "error"
                progress.error_type = exc.type
                error = {"type": exc.type, "message": exc.message}
                await store.append(stream_id, frames.event("error", error))
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
                        await store.append(stream_id, frames.event("error", shutdown))
                    raise
                current.uncancel()  # ours: DELETE, nobody listening, or the stream was taken
                if progress.ending != "lost":  # a lost one's end was written by its taker
                    # The input (and its cache share) is known; the output only as deltas.
                    await self._append_end(stream_id, frames, progress, dataclasses.replace(
                        progress.usage, output_tokens=progress.deltas,
                        stop_reason="cancelled", stop_details=None,
                    ), CANCEL_REASONS.get(progress.ending))
        except StreamLost as exc:  # taken for dead: found by this append, not the beat
            progress.ending = "lost"
            log.warning("generation %s stopped: %s", stream_id, exc)
        except StoreUnavailable as exc:
            progress.ending = "error"
            log.warning("generation %s stopped: the stream store failed: %s", stream_id, exc)
        finally:
            try:
                await self._store.finish(stream_id, keep_for=self._settings.resume_window)
            except StoreUnavailable as exc:  # the store ends it later, by itself
                log.warning("generation %s: could not finish its stream: %s", stream_id, exc)
            if progress.hold is not None and self._budgets is not None:
                hold, progress.hold = progress.hold, None
                await self._budgets.settle(hold, self._spent(progress))
            self._forget(stream_id, progress)
            self._log(stream_id, request, progress, frames.count)

    def _unknown_block(self, data: object) -> None:
        """A block or delta type this server does not know reached a reader as a generic
        `block` event: counted by type, and said once per type per process."""
        kind = data.get("type") if isinstance(data, dict) else None
        name = kind if isinstance(kind, str) and _TYPE_NAME.fullmatch(kind) else "other"
        self._metrics.unknown_blocks.labels(name).inc()
        if name not in self._warned_types:
            self._warned_types.add(name)
            log.warning("Claude sent a content %s of a type this server does not know: %s; "
                        "readers get it as a generic block event",
                        data.get("kind") if isinstance(data, dict) else "block", name)

    async def _append_end(self, stream_id: str, frames: StreamFrames, progress: _Progress,
                          usage: Usage, cancel_reason: str | None = None) -> None:
        """The last two frames of a reply that was not cut off: its usage (with why it was
        cancelled, when it was), then done."""
        progress.usage = usage
        wire = usage.wire()
        if cancel_reason is not None:
            wire["cancel_reason"] = cancel_reason
        await self._store.append(stream_id, frames.event("usage", wire))
        await self._store.append(stream_id, frames.event("done", "[DONE]"))

    @staticmethod
    def _spent(progress: _Progress) -> Usage:
        """What the reply used: its output as the upstream counted it, or as the deltas
        sent when it did not end on its own."""
        if progress.ending == "done":
            return progress.usage
        return dataclasses.replace(progress.usage, output_tokens=progress.deltas)

    def _log(
        self, stream_id: str, request: GenerationRequest, progress: _Progress, events: int,
    ) -> None:
        """The generation's one log line and its metrics; no message text."""
        duration = time.monotonic() - progress.started
        ttft = (
            progress.first_token - progress.called if progress.first_token is not None else None
        )
        usage = progress.usage
        output_tokens = usage.output_tokens if progress.ending == "done" else progress.deltas
        log.info(
            "generation id=%s client=%s user=%s provider=%s model=%s ttft=%s events=%d "
            "input_tokens=%d cache_write=%d cache_read=%d output_tokens=%d duration=%.0fms "
            "ended=%s%s",
            stream_id, loggable(progress.client) or "-",
            loggable(progress.user.id) if progress.user is not None else "-",
            self._provider.name, loggable(request.model),
            f"{ttft * 1000:.0f}ms" if ttft is not None else "-", events,
            usage.input_tokens, usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens, output_tokens, duration * 1000, progress.ending,
            _cancel_note(progress),
        )
        self._metrics.generation_finished(
            progress.ending or "error", ttft=ttft, duration=duration,
            output_tokens=output_tokens, error_type=progress.error_type,
            input_tokens=(usage.input_tokens, usage.cache_creation_input_tokens,
                          usage.cache_read_input_tokens),
        )


def _cancel_note(progress: _Progress) -> str:
    """The log line's ` cancel_reason=…` for a cancelled generation: a POSTed stream that
    nobody opened says so, rather than reading as any other cancel."""
    reason = CANCEL_REASONS.get(progress.ending) if progress.ending else None
    if reason is None:
        return ""
    if progress.ending == "client_gone" and progress.subscribed is not None:
        return f" cancel_reason={reason} (nobody opened the stream)"
    return f" cancel_reason={reason}"
