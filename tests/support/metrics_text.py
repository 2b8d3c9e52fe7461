"""Reading /metrics in tests: the Prometheus text as {(name, labels): value}."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def once_idle(url: str, timeout: float, what: str) -> Samples:
    """The server's /metrics once it runs no generation; fails after `timeout` seconds
    saying `what` ran on."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url + "/metrics") as response:
                samples = parse(await response.text())
            if value(samples, "sseserver_generations_active") == 0:
                return samples
            assert time.monotonic() < deadline, f"{what} ran on"
            await asyncio.sleep(0.1)
