"""The per-user limit holds across the fleet (docs/operations.md, "Users"): two
`python -m sseserver` processes on one Redis, and on a Redis Cluster, admit exactly
`--max-streams-per-client` generations of one user however many start at once, and a
process killed with SIGKILL gives its slots back once its lease runs out."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp

from sseserver.store.redis.liveness import HEARTBEAT_INTERVAL, PROCESS_LEASE

from .support.jwt_issuer import AUDIENCE, bearer, claims, hs256, secret_file
from .support.processes import Processes, ServerProcess

__all__ = ["secret_file"]

LIMIT = 3
STARTS = 1000
ALICE = bearer(hs256(claims("alice")))
BODY = {"messages": [{"role": "user", "content": "hi"}]}
# A killed process's lease runs out, then the next start's check no longer counts it.
DEATH_BOUND = PROCESS_LEASE + HEARTBEAT_INTERVAL


async def _start(session: aiohttp.ClientSession, server: ServerProcess) -> tuple[int, str]:
    async with session.post(server.url + "/api/streams", json=BODY, headers=ALICE) as answer:
        body = await answer.json()
        if answer.status == 201:
            return 201, server.url + body["url"]
        assert answer.status == 429, body
        assert body["error"]["type"] == "rate_limit_error"
        assert answer.headers["Retry-After"] == "5"
        return 429, ""


async def test_one_users_limit_is_exact_across_processes_and_freed_by_the_lease(
    processes: Processes, some_redis_url: str, secret_file: Path,
) -> None:
    # A POSTed stream nobody reads holds its slot for the resume window: the whole test.
    a, b = await asyncio.gather(*(processes.sseserver(
        None, "--redis-url", some_redis_url, "--jwt-secret-file", str(secret_file),
        "--jwt-audience", AUDIENCE, "--max-streams-per-client", str(LIMIT),
        "--resume-window", "60", "--max-loop-lag-ms", "0",
        # The streams it holds run to the end of the test: no grace for them at its stop.
        "--shutdown-grace", "0",
    ) for _ in range(2)))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        answers = await asyncio.gather(*(
            _start(session, (a, b)[i % 2]) for i in range(STARTS)
        ))
        took = time.monotonic() - started
        statuses = Counter(status for status, _ in answers)
        print(f"{STARTS} simultaneous starts on 2 processes: {dict(statuses)} in {took:.1f}s")
        assert statuses == {201: LIMIT, 429: STARTS - LIMIT}
        for _, url in answers:
            if url:
                async with session.delete(url, headers=ALICE) as gone:
                    assert gone.status == 204

        # Three held by a, then a dies: b admits nobody until a's lease has run out.
        held: list[str] = []
        deadline = time.monotonic() + 10
        while len(held) < LIMIT:  # the cancelled ones free their slots as they end
            status, url = await _start(session, a)
            if status == 201:
                held.append(url)
            assert time.monotonic() < deadline, (
                f"the cancelled streams never freed their slots: {len(held)} of {LIMIT} "
                f"admitted again in 10 s\n{a.log[-3000:]}")
            await asyncio.sleep(0.05 if status != 201 else 0)
        assert (await _start(session, b))[0] == 429
        a.kill()
        killed = time.monotonic()
        while (await _start(session, b))[0] == 429:
            assert time.monotonic() - killed < DEATH_BOUND + 2, "the dead process kept its slots"
            await asyncio.sleep(0.1)
        freed = time.monotonic() - killed
        print(f"slots of a SIGKILLed process free again after {freed:.2f}s "
              f"(lease {PROCESS_LEASE}s)")
        assert freed <= DEATH_BOUND + 1
        # b holds one now; it admits exactly LIMIT - 1 more.
        more = [await _start(session, b) for _ in range(LIMIT)]
        assert [status for status, _ in more] == [201] * (LIMIT - 1) + [429]
        usage_status = 0
        async with session.get(b.url + "/api/usage", headers=ALICE) as usage:
            usage_status = usage.status
            assert json.loads(await usage.read())["user"] == "alice"
        assert usage_status == 200
