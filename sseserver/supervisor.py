"""`--workers N`: N processes on one port.

The process started by the user only supervises: it starts N worker processes that each
listen on the same port with SO_REUSEPORT (the kernel spreads connections over them),
replaces one that dies, and stops them all on SIGTERM or SIGINT. They share streams through
Redis, which the settings require for N > 1. Workers are started with `spawn`, so each is a
fresh interpreter that inherits nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

from .config import Settings
from .event_loop import run
from .server import SHUTDOWN_TIMEOUT, configure_logging, serve, url_of

log = logging.getLogger("sseserver")

# How long workers may take to start, and the pause before one that died is replaced.
WORKER_START_TIMEOUT = 60.0
WORKER_RESTART_DELAY = 1.0


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
        print(f"sseserver listening on {url_of(settings.host, settings.port)} "
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
