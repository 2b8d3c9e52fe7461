"""S7's uploads (bench/scenarios.py): `--concurrency` clients each sending `POST
/api/streams` with a PDF of `--size-mib` MiB as a base64 `document` block, one after
another, while the loadgen's idle streams run; the server's memory sampled meanwhile.

Run as `python -m bench.uploads URL --server-pid PID --start-after S --duration S`, on the
load core beside the loadgen. It prints one JSON object: answers by status (a 503 also by
its message, so a refusal for loop lag can be told from one for body memory), uploads
done, their round-trip times, and the server's peak RSS growth over what it held just
before the first upload. The RSS is that of the server and every process under it: a
large body is parsed in worker processes, and what they hold is part of what an upload
costs.

Each stream created is deleted at once (`DELETE`, 204 expected): nobody subscribes to
it, and a stream waiting for its first subscriber keeps its request (the PDF with it)
for the whole first-subscriber grace, which would make the memory figure measure the
grace rather than the upload.

The body is built once: a PDF from tests/support/sample_files.py, padded to the size,
so its base64 decodes and its first bytes are `%PDF-`, as the server checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from sseserver.loadgen.report import percentiles
from tests.support.sample_files import document, pdf

RSS_EVERY: Final = 0.02  # seconds between samples: a parse's peak lasts a fraction of one
TREE_EVERY: Final = 0.5  # seconds between looks for the server's new child processes
PROMPT: Final = "What is this file?"


def upload_body(size: int) -> bytes:
    """The JSON of a POST /api/streams whose one user message holds a PDF of `size`
    bytes and a question."""
    block = document(pdf(size), title="bench.pdf")
    return json.dumps({"messages": [{"role": "user", "content": [
        block, {"type": "text", "text": PROMPT}]}]}).encode()


@dataclass
class Tally:
    """Answers by status; a 503 also by its message."""

    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    deleted: Counter[int] = field(default_factory=Counter)  # DELETE's statuses
    seconds: list[float] = field(default_factory=list)  # POST round trips
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all

    def answer(self, status: int, body: bytes, seconds: float) -> None:
        self.statuses[status] += 1
        self.seconds.append(seconds)
        if status == 503:
            self.refusals[_message(body)] += 1

    @property
    def done(self) -> int:
        return self.statuses[201]

    def report(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "answers": sum(self.statuses.values()),
            "statuses": {str(k): n for k, n in sorted(self.statuses.items())},
            "refused_503": self.statuses[503],
            "refusals_503": dict(self.refusals),
            "deleted": {str(k): n for k, n in sorted(self.deleted.items())},
            "failures": dict(self.failures),
            "upload_ms": percentiles(self.seconds),
            # Every upload created its stream and every stream was deleted.
            "ok": (self.done > 0 and self.done == sum(self.statuses.values())
                   and self.deleted[204] == self.done and not self.failures),
        }


def _message(body: bytes) -> str:
    """A refusal's error message (docs/protocol.md, "Errors"), or its first bytes."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(body)["error"]["message"])[:120]
    return body[:120].decode("latin-1")


def descendants(pid: int, parents: Iterable[tuple[int, int]]) -> set[int]:
    """`pid` and every process under it, from (pid, parent pid) pairs."""
    children: dict[int, list[int]] = {}
    for child, parent in parents:
        children.setdefault(parent, []).append(child)
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError), \
                    open(f"/proc/{name}/stat", "rb") as f:
                out.append((int(name), int(f.read().rsplit(b")", 1)[1].split()[1])))
    return out


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class TreeRss:
    """The summed RSS of a process and its descendants, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids = {pid}
        self.start = 0
        self.peak = 0
        self.server_peak = 0  # the server process alone

    def sample(self) -> int:
        total = 0
        for pid in list(self.pids):
            try:
                rss = _rss(pid)
            except OSError:  # a worker that exited
                self.pids.discard(pid)
                continue
            total += rss
            if pid == self.pid:
                self.server_peak = max(self.server_peak, rss)
        self.peak = max(self.peak, total)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        looked = 0.0
        while not stop.is_set():
            if time.monotonic() - looked > TREE_EVERY:
                self.pids = descendants(self.pid, processes())
                looked = time.monotonic()
            self.sample()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RSS_EVERY):
                    await stop.wait()


async def _client(session: aiohttp.ClientSession, url: str, body: bytes, until: float,
                  tally: Tally) -> None:
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            async with session.post(f"{url}/api/streams", data=body, headers=headers) as r:
                answer = await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.failures[type(exc).__name__] += 1
            await asyncio.sleep(0.1)
            continue
        tally.answer(status, answer, time.monotonic() - t0)
        if status == 201:
            stream = json.loads(answer)["url"]
            async with session.delete(f"{url}{stream}") as r:
                await r.read()
                tally.deleted[r.status] += 1
        elif status == 503:
            await asyncio.sleep(0.2)


async def run(url: str, *, concurrency: int, size: int, start_after: float, duration: float,
              server_pid: int | None) -> dict[str, Any]:
    t0 = time.monotonic()
    body = upload_body(size)
    tree = TreeRss(server_pid) if server_pid else None
    stop = asyncio.Event()
    await asyncio.sleep(max(0.0, start_after - (time.monotonic() - t0)))
    sampler = None
    if tree is not None:
        tree.pids = descendants(tree.pid, processes())
        tree.start = tree.sample()
        tree.peak = 0
        sampler = asyncio.create_task(tree.run(stop))
    tally = Tally()
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(_client(session, url, body, started + duration, tally)
                               for _ in range(concurrency)))
    seconds = time.monotonic() - started
    stop.set()
    if sampler is not None:
        await sampler
    out: dict[str, Any] = {"concurrency": concurrency, "body_bytes": len(body),
                           "in_flight_bytes": concurrency * len(body), "seconds": seconds,
                           **tally.report()}
    if tree is not None:
        out |= {"rss_start": tree.start, "rss_peak": tree.peak,
                "rss_growth": tree.peak - tree.start,
                "rss_growth_per_in_flight": (tree.peak - tree.start) / (concurrency * len(body)),
                "server_rss_peak": tree.server_peak, "processes": len(tree.pids)}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.uploads", description=__doc__)
    p.add_argument("url", help="server base URL")
    p.add_argument("--concurrency", type=int, default=8, help="uploads in flight at once")
    p.add_argument("--size-mib", type=float, default=20.0, help="the PDF's size, MiB")
    p.add_argument("--start-after", type=float, default=0.0,
                   help="seconds to wait before the first upload")
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds during which new uploads start")
    p.add_argument("--server-pid", type=int, help="sample this process tree's RSS")
    args = p.parse_args(argv)
    report = asyncio.run(run(args.url.rstrip("/"), concurrency=args.concurrency,
                             size=int(args.size_mib * 2**20), start_after=args.start_after,
                             duration=args.duration, server_pid=args.server_pid))
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
