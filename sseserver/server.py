"""Running the app in one process: listen, serve until SIGTERM or SIGINT, shut down
gracefully (docs/operations.md, "Graceful shutdown"). Several processes on one port are
supervisor.py's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

from aiohttp import web

from .app import create_app
from .config import Settings
from .connections import SSERunner
from .gc_schedule import CollectorSchedule
from .open_files import raise_open_files_limit

log = logging.getLogger("sseserver")

# How long aiohttp waits for open handlers at shutdown, after generations were ended: a
# subscriber only has its last frames to take by then (a stuck one is cut).
SHUTDOWN_TIMEOUT = 2.0
# Connections waiting to be accepted. aiohttp's default of 128 overflows when a load test
# (or a reconnect storm after a network blip) opens thousands at once, and each overflow
# costs the client a 1 s SYN retry. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


def configure_logging(level_name: str, *, with_pid: bool = False) -> None:
    level = logging.getLevelNamesMapping()[level_name.upper()]
    process = " [%(process)d]" if with_pid else ""
    logging.basicConfig(format=f"%(asctime)s %(levelname)s{process} %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """A second SIGTERM/SIGINT: the operator wants out now. A plain signal handler (not
    the event loop's) so it works even if the loop is stuck; the kernel closes every
    socket, upstream connections included, so nothing is billed after this."""
    os.write(2, b"sseserver: second signal, exiting now\n")
    os._exit(128 + signum)


async def serve(
    settings: Settings,
    *,
    reuse_port: bool = False,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully:

        signal ─▶ stop listening ─▶ running generations get --shutdown-grace seconds
               ─▶ the rest end with `error: server_shutdown`, upstreams closed
               ─▶ open responses get SHUTDOWN_TIMEOUT to take their last frames ─▶ exit 0
        second signal, at any point ─▶ exit at once (128 + signal number)

    `ready` replaces printing the URL (a worker tells its supervisor instead)."""
    raise_open_files_limit()  # before anything is opened: connections.py sizes from it
    app = create_app(settings)
    runner = SSERunner(app, settings, shutdown_timeout=SHUTDOWN_TIMEOUT)
    # Signal handlers before anything listens: a supervisor may stop us the moment the
    # URL is printed, and that must be the graceful path, not the default kill. A worker
    # leaves SIGINT (Ctrl+C in its terminal) to its supervisor.
    signals = (signal.SIGTERM,) if ready else (signal.SIGINT, signal.SIGTERM)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    collector = CollectorSchedule()
    try:
        site = web.TCPSite(
            runner, settings.host, settings.port, backlog=LISTEN_BACKLOG,
            reuse_port=reuse_port or None,
        )
        await site.start()
        collector.start()  # after start-up, which lives until exit (gc_schedule.py)
        if ready is not None:
            ready()
        for address in runner.addresses if ready is None else ():
            print(f"sseserver listening on {url_of(address[0], address[1])}", flush=True)
        await stop.wait()
        for signum in signals:
            loop.remove_signal_handler(signum)
            signal.signal(signum, _exit_now)
        log.info(
            "shutting down: no new connections; running generations get %gs to finish "
            "(a second signal exits at once)", settings.shutdown_grace,
        )
    finally:
        # Stops listening, runs on_shutdown (Generations.drain), waits for handlers.
        await runner.cleanup()
        collector.stop()
    _report_leftover_tasks()


def _report_leftover_tasks() -> None:
    """Say whether anything is still running: a clean stop leaves no task."""
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if left:
        log.warning("stopped with %d task(s) still running: %s", len(left),
                    ", ".join(sorted(t.get_name() for t in left))[:500])
    else:
        log.info("stopped cleanly: no task left running")


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
