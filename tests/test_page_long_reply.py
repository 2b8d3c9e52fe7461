"""A 20,000-token reply streams into the chat page without the page falling behind.

A real `python -m sseserver` process with the demo provider (its Markdown reply, a
paragraph and a numbered list, repeated) streams 20,000 tokens one millisecond apart:
about 30 times the demo's default pace, so a page that keeps up here keeps up with
Claude. Chromium's own counters (the DevTools protocol's Performance.getMetrics) give
the main thread's busy time; a requestAnimationFrame loop counts frames. The test
prints, for a window early in the reply and one near its end, the main thread's time
per frame and the long tasks, and checks that the cost of a frame does not grow with
the length of the reply (the page renders only the end of the text on each frame) and
that the page shows the end of the reply right after the server sent it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aiohttp
import pytest
from playwright.async_api import Browser, CDPSession, Page

from .support.browser import ask, checked_page, launch_chromium, wait_status
from .support.processes import Processes, processes

__all__ = ["processes"]

pytestmark = pytest.mark.browser

TOKENS = 20_000
SAMPLE_EVERY = 0.25

# Frames and long tasks, counted by the page from its first script on.
COUNTERS = """
window.__frames = 0;
window.__longTasks = [];
(function tick() { window.__frames += 1; requestAnimationFrame(tick); })();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
"""


@dataclass(frozen=True)
class Sample:
    wall: float  # s, time.monotonic()
    page_ms: float  # performance.now() in the page
    task: float  # s of main-thread tasks so far (TaskDuration)
    script: float  # s of script (ScriptDuration)
    layout: float  # s of layout and style (LayoutDuration + RecalcStyleDuration)
    frames: int
    tokens: int  # tokens shown in the reply's metrics line


async def sample(page: Page, cdp: CDPSession) -> Sample:
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    frames, page_ms, line = await page.evaluate(
        """() => [window.__frames, performance.now(),
                  document.querySelector('#transcript .reply:last-child .metrics')?.textContent]"""
    )
    match = re.search(r"(\d+) tokens", line or "")
    return Sample(
        wall=time.monotonic(),
        page_ms=page_ms,
        task=metrics["TaskDuration"],
        script=metrics["ScriptDuration"],
        layout=metrics["LayoutDuration"] + metrics["RecalcStyleDuration"],
        frames=frames,
        tokens=int(match.group(1)) if match else 0,
    )


@dataclass(frozen=True)
class Window:
    name: str
    first: Sample
    last: Sample
    long_tasks: list[float]

    @property
    def frames(self) -> int:
        return self.last.frames - self.first.frames

    @property
    def busy(self) -> float:
        """The share of wall time the main thread was busy."""
        return (self.last.task - self.first.task) / (self.last.wall - self.first.wall)

    def per_frame_ms(self, field: str) -> float:
        spent: float = getattr(self.last, field) - getattr(self.first, field)
        return 1000 * spent / max(self.frames, 1)

    def report(self) -> str:
        seconds = self.last.wall - self.first.wall
        worst = max(self.long_tasks, default=0.0)
        return (
            f"{self.name}: tokens {self.first.tokens}-{self.last.tokens} over {seconds:.1f} s, "
            f"{self.frames / seconds:.0f} frames/s; main thread per frame "
            f"{self.per_frame_ms('task'):.2f} ms (script {self.per_frame_ms('script'):.2f}, "
            f"layout+style {self.per_frame_ms('layout'):.2f}), busy {100 * self.busy:.0f}%; "
            f"long tasks {len(self.long_tasks)}, longest {worst:.0f} ms"
        )


def window(name: str, samples: list[Sample], lo: float, hi: float, long_tasks: list[list[float]]
           ) -> Window:
    """The samples between `lo` and `hi` of the reply's tokens."""
    inside = [s for s in samples if lo * TOKENS <= s.tokens <= hi * TOKENS]
    assert len(inside) >= 4, f"too few samples in {name}: {[s.tokens for s in samples]}"
    first, last = inside[0], inside[-1]
    tasks = [d for start, d in long_tasks if first.page_ms <= start <= last.page_ms]
    return Window(name, first, last, tasks)


async def server_done(url: str) -> float:
    """When the server's last stream ended (its /healthz counts none running)."""
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url + "/healthz") as response:
                if (await response.json())["active_streams"] == 0:
                    return time.monotonic()
            await asyncio.sleep(0.02)


@pytest.mark.timeout(240)
async def test_a_20000_token_reply_keeps_pace(
    processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await processes.sseserver(
        None, "--demo-tokens", str(TOKENS), "--demo-delay-ms", "1"
    )
    browser: Browser
    async with launch_chromium() as browser, checked_page(browser) as page:
        await page.add_init_script(COUNTERS)
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await page.goto(server.url)
        await ask(page, "A long one, please")
        await page.wait_for_selector("#transcript .reply .metrics:not([hidden])")
        ended = asyncio.create_task(server_done(server.url))

        samples: list[Sample] = []
        reply = page.locator("#transcript .reply").last
        while await reply.get_attribute("data-status") == "streaming":
            samples.append(await sample(page, cdp))
            await asyncio.sleep(SAMPLE_EVERY)
        shown_at = time.monotonic()
        await wait_status(reply, "done")
        server_end = await ended
        long_tasks: list[list[float]] = await page.evaluate("window.__longTasks")
        final = await page.evaluate(
            """() => document.querySelector('#transcript .reply:last-child .text-part')
                .textContent.length"""
        )

    early = window("early (10-30% of the reply)", samples, 0.10, 0.30, long_tasks)
    late = window("late (75-98% of the reply)", samples, 0.75, 0.98, long_tasks)
    lag = shown_at - server_end
    ending = [round(d) for start, d in long_tasks if start > samples[-1].page_ms]
    with capsys.disabled():
        print(f"\n{TOKENS} tokens, {final} characters shown")
        print(early.report())
        print(late.report())
        print(f"the page showed the end {1000 * lag:.0f} ms after the server's stream ended;"
              f" long tasks from then on (ms): {ending}")

    # The page kept up: done is shown within a few frames of the server ending the
    # stream (sampled every SAMPLE_EVERY s), and the main thread had time to spare.
    assert lag < SAMPLE_EVERY + 0.5, f"the page fell {lag:.2f} s behind"
    assert late.busy < 0.6, late.report()
    # A frame near the end costs about what one near the start did: not O(length).
    # (Rendering every block on each frame, or laying out every block, fails this.)
    # Script grows if every block is rendered again; layout if every block is laid out.
    for part, slack_ms in (("task", 1.0), ("script", 0.5), ("layout", 0.5)):
        early_ms, late_ms = early.per_frame_ms(part), late.per_frame_ms(part)
        assert late_ms < 1.4 * early_ms + slack_ms, f"{part}:\n{early.report()}\n{late.report()}"
