"""Soak: 10,000 demo generations against `python -m sseserver`, with random
client behaviour, then nothing left behind. Bounded in count and time, on 127.0.0.1 only.

Behaviours, seeded (so a failure replays): read all; POST then read; drop early; drop and
resume with Last-Event-ID; DELETE mid-stream; a slow reader. Every stream a client keeps
(read to its end, resumed or not) must hold exactly the demo's text; a DELETEd one exactly
a prefix of it, ended by `done`. Afterwards, read from the server's own /metrics: no
generation and no subscriber active, the asyncio task count back to its baseline, and the
resident memory grown by less than RSS_BOUND since a warm-up (the figures are printed).

The server runs as its own process (both cores work: it, and this client), so its task
count and memory are its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import pytest

from sseserver.providers.demo import demo_tokens

from .support.metrics_text import parse, value
from .support.processes import Processes
from .support.sse_parser import SSEEvent, SSEParser
from .support.waiting import until

GENERATIONS: Final = 10_000
WARM_UP: Final = 300
CONCURRENCY: Final = 48
TOKENS: Final = 8
RESUME_WINDOW: Final = 2
# Growth allowed after the warm-up: a leak of a few kilobytes per generation crosses it.
RSS_BOUND: Final = 32 * 1024 * 1024
SEED: Final = 20261126
BEHAVIOURS: Final = {  # weights
    "read_all": 30, "post_read": 15, "drop_early": 15, "drop_resume": 20, "delete": 10,
    "slow": 10,
}

pytestmark = [pytest.mark.soak, pytest.mark.timeout(170)]


def expected_text(question: str) -> str:
    return "".join(itertools.islice(itertools.cycle(demo_tokens(question)), TOKENS))


def text_of(events: list[SSEEvent]) -> str:
    return "".join(json.loads(e.data) for e in events if e.type == "message")


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self.kept = 0
        self.failures: list[str] = []
        self.done: Counter[str] = Counter()

    async def read(
        self, url: str, *, headers: dict[str, str] | None = None, stop_after: int | None = None,
        pause: float = 0.0,
    ) -> tuple[int, list[SSEEvent]]:
        """Events from `url`; with `stop_after`, close the connection after that many."""
        parser = SSEParser()
        events: list[SSEEvent] = []
        async with self.session.get(self.base + url, headers=headers) as response:
            if response.status != 200:
                return response.status, events
            async for chunk in response.content.iter_any():
                events += parser.feed(chunk)
                if stop_after is not None and len(events) >= stop_after:
                    response.close()  # drop the connection mid-stream, as a closed tab
                    return 200, events[:stop_after]
                if pause:
                    await asyncio.sleep(pause)
        return 200, events

    async def post(self, question: str) -> str:
        body = {"messages": [{"role": "user", "content": question}]}
        async with self.session.post(self.base + "/api/streams", json=body) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["url"])

    def keep(self, kind: str, question: str, events: list[SSEEvent], *,
             prefix: bool = False) -> None:
        self.kept += 1
        text, want = text_of(events), expected_text(question)
        complete = bool(events) and events[-1].type == "done"
        exact = want.startswith(text) if prefix else text == want
        if not (complete and exact):
            self.failures.append(f"{kind} {question!r}: {[e.type for e in events]} {text!r}")

    async def run_one(self, index: int, kind: str, rng: random.Random) -> None:
        question = f"soak {index}"
        sse = f"/api/sse?message=soak%20{index}"
        if kind == "read_all":
            _, events = await self.read(sse)
            self.keep(kind, question, events)
        elif kind == "post_read":
            _, events = await self.read(await self.post(question))
            self.keep(kind, question, events)
        elif kind == "drop_early":
            await self.read(sse, stop_after=rng.randint(1, 3))
        elif kind == "drop_resume":
            _, first = await self.read(sse, stop_after=rng.randint(1, TOKENS))
            status, rest = await self.read(
                sse, headers={"Last-Event-ID": first[-1].last_event_id}
            )
            if status != 200:
                self.failures.append(f"{kind} {question!r}: resume answered {status}")
            self.keep(kind, question, first + rest)
        elif kind == "delete":
            url = await self.post(question)
            async with self.session.get(self.base + url) as response:
                parser = SSEParser()
                events = parser.feed(await response.content.readany())
                async with self.session.delete(self.base + url) as deleted:
                    assert deleted.status == 204
                async for chunk in response.content.iter_any():
                    events += parser.feed(chunk)
            self.keep(kind, question, events, prefix=True)
        elif kind == "slow":
            _, events = await self.read(sse, pause=0.002)
            self.keep(kind, question, events)
        self.done[kind] += 1


async def run(client: Client, count: int, start: int, rng: random.Random) -> None:
    kinds, weights = list(BEHAVIOURS), list(BEHAVIOURS.values())
    plan = [(start + i, rng.choices(kinds, weights)[0]) for i in range(count)]
    queue = iter(plan)

    async def worker(worker_rng: random.Random) -> None:
        for index, kind in queue:
            await client.run_one(index, kind, worker_rng)

    await asyncio.gather(*[worker(random.Random(rng.random())) for _ in range(CONCURRENCY)])


async def _last_stream_freed(base: str) -> Callable[[], Awaitable[bool]]:
    """Runs one more generation, after every other has ended, and returns the check that
    its stream is freed: streams are freed in the order they finished, so once this
    one is, every finished stream is."""
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/api/sse?message=last") as response:
            events = SSEParser().feed(await response.read())
        assert events[-1].type == "done"
        url = base + "/api/streams/" + json.loads(events[0].data)["stream"]

    async def freed() -> bool:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 404

    return freed


async def server_figures(base: str) -> dict[str, float]:
    """Scrape /metrics on a connection of its own, once nothing is active any more."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        for _ in range(500):
            async with s.get(base + "/metrics") as response:
                samples = parse(await response.text())
            if (value(samples, "sseserver_generations_active") == 0
                    and value(samples, "sseserver_subscribers_active") == 0):
                break
            await asyncio.sleep(0.02)
    names = ["sseserver_generations_active", "sseserver_subscribers_active",
             "sseserver_asyncio_tasks", "process_resident_memory_bytes",
             "sseserver_generations_started_total", "sseserver_resumes_total",
             "sseserver_events_sent_total"]
    figures = {name: value(samples, name) for name in names}
    for reason in ("client_gone", "slow"):
        figures[f"disconnects {reason}"] = value(samples, "sseserver_disconnects_total",
                                                 reason=reason)
    for ending in ("done", "cancelled", "client_gone"):
        figures[f"ended {ending}"] = value(samples, "sseserver_generations_finished_total",
                                           ended=ending)
    return figures


async def test_soak_10000_generations_leave_nothing_behind(processes: Processes) -> None:
    rng = random.Random(SEED)
    server = await processes.sseserver(
        None, "--demo-delay-ms", "0", "--demo-tokens", str(TOKENS),
        "--resume-window", str(RESUME_WINDOW),
        "--log-level", "warning",
    )
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(server.url, session)
        await run(client, WARM_UP, 0, rng)
    before = await server_figures(server.url)

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(server.url, session)
        await run(client, GENERATIONS, WARM_UP, rng)
    elapsed = time.monotonic() - started
    await server_figures(server.url)  # once no generation runs any more
    await until(await _last_stream_freed(server.url), within=RESUME_WINDOW + 10,
                what="the last finished stream freed after --resume-window")
    after = await server_figures(server.url)

    rss_growth = after["process_resident_memory_bytes"] - before["process_resident_memory_bytes"]
    print(f"\nsoak: {GENERATIONS} generations in {elapsed:.1f}s "
          f"({GENERATIONS / elapsed:.0f}/s, {CONCURRENCY} concurrent clients); "
          f"behaviours {dict(client.done)}")
    print(f"soak: {client.kept} kept streams, {len(client.failures)} not exact; server: "
          + ", ".join(f"{k} {after[k] - before[k]:.0f}" for k in (
              "sseserver_generations_started_total", "sseserver_resumes_total",
              "sseserver_events_sent_total", "disconnects client_gone", "disconnects slow",
              "ended done", "ended cancelled", "ended client_gone")))
    print(f"soak: after: generations active {after['sseserver_generations_active']:.0f}, "
          f"subscribers active {after['sseserver_subscribers_active']:.0f}, asyncio tasks "
          f"{after['sseserver_asyncio_tasks']:.0f} (baseline "
          f"{before['sseserver_asyncio_tasks']:.0f}); RSS "
          f"{before['process_resident_memory_bytes'] / 2**20:.1f} -> "
          f"{after['process_resident_memory_bytes'] / 2**20:.1f} MiB "
          f"(growth {rss_growth / 2**20:.1f} MiB, bound {RSS_BOUND / 2**20:.0f} MiB)")
    assert client.failures == [], client.failures[:10]
    assert sum(client.done.values()) == GENERATIONS
    assert after["sseserver_generations_started_total"] - before[
        "sseserver_generations_started_total"] == GENERATIONS + 1  # and the last one
    assert after["sseserver_generations_active"] == 0
    assert after["sseserver_subscribers_active"] == 0
    assert after["sseserver_asyncio_tasks"] == before["sseserver_asyncio_tasks"]
    assert rss_growth < RSS_BOUND
