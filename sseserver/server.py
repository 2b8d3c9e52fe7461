"""Running the app: one process (`serve`), or N worker processes on one port.

With `--workers N` (N > 1) the process started by the user only supervises: it starts N
worker processes that each listen on the same port with SO_REUSEPORT (the kernel spreads
connections over them), replaces one that dies, and stops them all on SIGTERM or SIGINT.
They share streams through Redis, which the settings require for N > 1 (SPEC 6). Workers
are started with `spawn`, so each is a fresh interpreter that inherits nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from .access_log import AccessLogger
from .app import create_app
from .config import LOOPS, ConfigError, LoopName, Settings

log = logging.getLogger("sseserver")

# How long aiohttp waits for open handlers at shutdown, after generations were ended: a
# subscriber only has its last frames to take by then (a stuck one is cut).
SHUTDOWN_TIMEOUT = 2.0
# Connections waiting to be accepted. aiohttp's default of 128 overflows when a load test
# (or a reconnect storm after a network blip) opens thousands at once, and each overflow
# costs the client a 1 s SYN retry. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
# Workers: how long they may take to start, and the pause before one that died is replaced.
WORKER_START_TIMEOUT = 60.0
WORKER_RESTART_DELAY = 1.0

# Loggers of the HTTP stack under the Anthropic SDK. At DEBUG they log request bodies,
# i.e. users' messages, so they never go below INFO here (ANTHROPIC_LOG=debug still can).
_SDK_LOGGERS = ("anthropic", "httpx", "httpx2", "httpcore", "httpcore2")


def configure_logging(level_name: str, *, with_pid: bool = False) -> None:
    level = logging.getLevelNamesMapping()[level_name.upper()]
    process = " [%(process)d]" if with_pid else ""
    logging.basicConfig(format=f"%(asctime)s %(levelname)s{process} %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if not os.environ.get("ANTHROPIC_LOG"):
        for name in _SDK_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.INFO))


def resolved_loop(choice: LoopName) -> LoopName:
    """`auto` is uvloop when it can be imported (it is a dependency on Linux and macOS)."""
    if choice not in LOOPS:  # a worker reads SSESERVER_LOOP itself (worker.py)
        raise ConfigError(f"--loop={choice!r} (SSESERVER_LOOP): must be auto, asyncio or uvloop")
    installed = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not installed:
        raise ConfigError("--loop uvloop (SSESERVER_LOOP): uvloop is not installed: "
                          "pip install uvloop")
    if choice == "auto":
        return "uvloop" if installed else "asyncio"
    return choice


def run(main: Coroutine[None, None, None], loop: LoopName) -> None:
    """asyncio.run() on the chosen event loop. uvloop is libuv's loop in C: each event's
    task step, timer and socket write cost less (issue 6: S1 1.18× → 1.34× raw aiohttp)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


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
    """Run until SIGINT or SIGTERM, then shut down gracefully (SPEC 7):

        signal ─▶ stop listening ─▶ running generations get --shutdown-grace seconds
               ─▶ the rest end with `error: server_shutdown`, upstreams closed
               ─▶ open responses get SHUTDOWN_TIMEOUT to take their last frames ─▶ exit 0
        second signal, at any point ─▶ exit at once (128 + signal number)

    `ready` replaces printing the URL (a worker tells its supervisor instead)."""
    app = create_app(settings)
    # handler_cancellation: a client that disconnects cancels its handler at once, even
    # while the upstream is silent and nothing is being written (SPEC 4).
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    # Signal handlers before anything listens: a supervisor may stop us the moment the
    # URL is printed, and that must be the graceful path, not the default kill. A worker
    # leaves SIGINT (Ctrl+C in its terminal) to its supervisor.
    signals = (signal.SIGTERM,) if ready else (signal.SIGINT, signal.SIGTERM)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, settings.host, settings.port, backlog=LISTEN_BACKLOG,
            reuse_port=reuse_port or None,
        )
        await site.start()
        # Everything made at start-up (modules, the SDK's models and clients) lives until
        # exit: moving it out of the collector's reach makes each full collection short,
        # which is where a relay's latency tail came from (issue 6).
        gc.freeze()
        if ready is not None:
            ready()
        for address in runner.addresses if ready is None else ():
            print(f"sseserver listening on {_url(address[0], address[1])}", flush=True)
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
    _report_leftover_tasks()


def _report_leftover_tasks() -> None:
    """Say whether anything is still running: a clean stop leaves no task (SPEC 7)."""
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if left:
        log.warning("stopped with %d task(s) still running: %s", len(left),
                    ", ".join(sorted(t.get_name() for t in left))[:500])
    else:
        log.info("stopped cleanly: no task left running")


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _worker(settings: Settings, ready: Connection) -> None:
    """One worker process (started by spawn, so nothing is inherited but its arguments)."""
    configure_logging(settings.log_level, with_pid=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; SIGTERM stops
    run(serve(settings, reuse_port=True, ready=lambda: ready.send(0)), settings.loop)


def run_workers(settings: Settings) -> int:
    """Start `settings.workers` processes on one port and watch them until told to stop."""
    context = multiprocessing.get_context("spawn")
    holder: socket.socket | None = None
    if settings.port == 0:
        # Pick the port here, and hold it (SO_REUSEPORT, not listening, so it gets no
        # connections) until the workers are bound to it.
        holder = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((settings.host, 0))
        settings = dataclasses.replace(settings, port=holder.getsockname()[1])
    ready, ready_writer = context.Pipe(duplex=False)  # each worker sends once it listens
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(settings, ready_writer), daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(settings.workers)]
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        started = 0
        while started < len(workers):
            if stopping or any(not w.is_alive() for w in workers):
                print("sseserver: a worker failed to start", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print("sseserver: the workers did not start in time", file=sys.stderr)
                return 1
            while ready.poll(0.2):
                ready.recv()
                started += 1
        if holder is not None:
            holder.close()
        print(f"sseserver listening on {_url(settings.host, settings.port)} "
              f"({settings.workers} workers)", flush=True)
        while not stopping:
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=0.5)
            for index, worker in enumerate(workers):
                if not worker.is_alive() and not stopping:
                    log.error("worker %d exited with %s; starting another in %.0fs",
                              worker.pid, worker.exitcode, WORKER_RESTART_DELAY)
                    time.sleep(WORKER_RESTART_DELAY)
                    workers[index] = start()
            while ready.poll():
                ready.recv()
        log.info("shutting down %d workers", len(workers))
        return 0
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()  # SIGTERM: each shuts down cleanly
        for worker in workers:
            worker.join(SHUTDOWN_TIMEOUT + 5)
            if worker.is_alive():
                worker.kill()
                worker.join()
        if holder is not None:
            holder.close()
