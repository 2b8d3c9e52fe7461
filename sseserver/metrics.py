"""Prometheus metrics: one registry per app, low-cardinality labels only.

Two kinds of numbers live here:

- Per-write numbers (events and bytes sent, subscribers attached) are plain integers on
  `Live`, bumped by the subscriber's write loop: an attribute add, with no lock, label
  lookup or allocation on the hot path. A custom collector reads them at scrape time.
- Per-generation and per-refusal numbers (endings, upstream errors, histograms) use
  prometheus-client's own types; they change a few times per generation.

No label ever holds a stream id, a client address, a message or a key: labels take values
from the fixed sets below, and an upstream error type we do not know becomes `other`.
The registry is the app's own, never prometheus-client's global one, so several apps (tests,
workers in one process) never collide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

# How a generation ended (as in its log line, generations.py).
ENDINGS: Final = ("done", "cancelled", "client_gone", "error", "shutdown", "lost")
# Why a subscriber's response ended before its stream did.
DISCONNECT_REASONS: Final = ("client_gone", "slow", "shutdown")
# Why a request to start a generation was refused (429, 503), to use the API (401), or a
# body or connection was turned away for the memory or descriptors it would take (503).
REFUSALS: Final = (
    "capacity", "client_limit", "shutting_down", "overload", "unauthorized", "body_memory",
    "connections", "budget",
)
# Input tokens by how they were billed: at full price, written to the prompt cache, read
# from it (Anthropic's input_tokens, cache_creation_input_tokens, cache_read_input_tokens).
INPUT_KINDS: Final = ("uncached", "cache_write", "cache_read")
# Tokens charged to users' budgets (budgets.py), by kind; no label names a user.
BUDGET_KINDS: Final = ("uncached", "cache_write", "cache_read", "output")
# Anthropic's error types (https://docs.anthropic.com/en/api/errors) and our own two.
UPSTREAM_ERROR_TYPES: Final = frozenset({
    "invalid_request_error", "authentication_error", "billing_error", "permission_error",
    "not_found_error", "request_too_large", "rate_limit_error", "api_error", "timeout_error",
    "overloaded_error", "upstream_unavailable", "upstream_timeout",
})

# Time to first token: from tens of ms (demo, cached) to a long "thinking" pause.
_TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
# How far behind the event loop runs: from a busy tick to a stall.
_LAG_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5,
)
# A whole generation: a cancel after a token up to a long reply.
_DURATION_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)


class Live:
    """Numbers the hot path bumps directly (single-threaded: the event loop's)."""

    __slots__ = ("bytes_sent", "events_sent", "subscribers")

    def __init__(self) -> None:
        self.events_sent = 0
        self.bytes_sent = 0
        self.subscribers = 0


class _LiveCollector(Collector):
    def __init__(self, live: Live, generations: Callable[[], int]) -> None:
        self._live = live
        self._generations = generations

    def collect(self) -> Iterator[Metric]:
        live = self._live
        yield GaugeMetricFamily(
            "sseserver_generations_active", "Generations running now.",
            value=self._generations(),
        )
        yield GaugeMetricFamily(
            "sseserver_subscribers_active", "SSE responses attached to a stream now.",
            value=live.subscribers,
        )
        yield CounterMetricFamily(
            "sseserver_events_sent", "SSE events written to subscribers (replays included).",
            value=live.events_sent,
        )
        yield CounterMetricFamily(
            "sseserver_bytes_sent", "Bytes of SSE frames, pings included, written to subscribers.",
            value=live.bytes_sent,
        )
        yield GaugeMetricFamily(
            "sseserver_asyncio_tasks", "asyncio tasks alive in the process (leak watch).",
            value=_task_count(),
        )


def _task_count() -> float:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped outside the event loop (not by our route)
        return float("nan")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.live = Live()
        self._generations: Callable[[], int] = lambda: 0
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, fds, CPU
        self.registry.register(_LiveCollector(self.live, lambda: self._generations()))
        registry = self.registry
        self.started = Counter(
            "sseserver_generations_started", "Generations started.", registry=registry
        )
        self.finished = Counter(
            "sseserver_generations_finished", "Generations finished, by how they ended.",
            ["ended"], registry=registry,
        )
        self.disconnects = Counter(
            "sseserver_disconnects",
            "Subscribers whose response ended before the stream did, by reason.",
            ["reason"], registry=registry,
        )
        self.upstream_errors = Counter(
            "sseserver_upstream_errors", "Generations that ended with an upstream error, by type.",
            ["type"], registry=registry,
        )
        self.resumes = Counter(
            "sseserver_resumes", "Reconnects that resumed a stream with Last-Event-ID.",
            registry=registry,
        )
        self.refused = Counter(
            "sseserver_refused",
            "Requests refused by a limit (429, 503) or for lack of the access token (401).",
            ["reason"], registry=registry,
        )
        self.output_tokens = Counter(
            "sseserver_output_tokens",
            "Output tokens generated (text and thinking deltas when cancelled).",
            registry=registry,
        )
        self.input_tokens = Counter(
            "sseserver_input_tokens", "Input tokens of generations, by how they were billed.",
            ["kind"], registry=registry,
        )
        self.unknown_blocks = Counter(
            "sseserver_unknown_blocks",
            "Content blocks and deltas of a type this server does not know, sent to readers "
            "as generic block events, by type.",
            ["type"], registry=registry,
        )
        self.budget_tokens = Counter(
            "sseserver_budget_tokens", "Tokens of replies charged to users' budgets, by kind.",
            ["kind"], registry=registry,
        )
        self.budget_counted = Counter(
            "sseserver_budget_counted_tokens",
            "What replies counted against users' budgets (cache reads at a tenth).",
            registry=registry,
        )
        self.ttft = Histogram(
            "sseserver_time_to_first_token_seconds", "From start to the first text delta.",
            buckets=_TTFT_BUCKETS, registry=registry,
        )
        self.loop_lag = Histogram(
            "sseserver_event_loop_lag_seconds",
            "How late the event loop ran a timer, sampled every 50 ms (admission: "
            "--max-loop-lag-ms).",
            buckets=_LAG_BUCKETS, registry=registry,
        )
        self.duration = Histogram(
            "sseserver_generation_duration_seconds", "From start to the end of a generation.",
            buckets=_DURATION_BUCKETS, registry=registry,
        )
        # Every labelled series exists from the start, at 0, so rates work from the first
        # scrape and a dashboard shows "none" rather than "no data".
        for ending in ENDINGS:
            self.finished.labels(ending)
        for reason in DISCONNECT_REASONS:
            self.disconnects.labels(reason)
        for refusal in REFUSALS:
            self.refused.labels(refusal)
        for kind in INPUT_KINDS:
            self.input_tokens.labels(kind)
        for kind in BUDGET_KINDS:
            self.budget_tokens.labels(kind)

    def count_generations(self, active: Callable[[], int]) -> None:
        """Where `sseserver_generations_active` is read from (the Generations registry)."""
        self._generations = active

    def generation_finished(
        self,
        ending: str,
        *,
        ttft: float | None,
        duration: float,
        output_tokens: int,
        error_type: str | None,
        input_tokens: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """`input_tokens`: (uncached, cache write, cache read), as INPUT_KINDS."""
        self.finished.labels(ending if ending in ENDINGS else "error").inc()
        if ttft is not None:
            self.ttft.observe(ttft)
        self.duration.observe(duration)
        self.output_tokens.inc(output_tokens)
        for kind, count in zip(INPUT_KINDS, input_tokens, strict=True):
            if count:
                self.input_tokens.labels(kind).inc(count)
        if error_type is not None:
            known = error_type if error_type in UPSTREAM_ERROR_TYPES else "other"
            self.upstream_errors.labels(known).inc()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for a scraper's Accept header (Prometheus text, or OpenMetrics
        when asked for), and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
