"""A gunicorn worker class for sseserver: aiohttp's, serving the app as `python -m
sseserver` does.

aiohttp's `GunicornWebWorker` builds its `AppRunner` without `handler_cancellation`, so a
client that disconnects while nothing is being written (Claude thinking) would only be
noticed at the next write, and the upstream request would go on; nor would it bound request
heads, slow clients or connections (connections.py). The worker takes an async factory
returning an `AppRunner` as it is, so this one hands it sseserver's own runner, with
gunicorn's logging and graceful timeout:

    SSESERVER_REDIS_URL=redis://127.0.0.1:6379/0 \\
    gunicorn 'sseserver.app:app_from_environment()' \\
        --worker-class sseserver.gunicorn_worker.SSEWorker --workers 4 --bind 127.0.0.1:8080

Options come from the SSESERVER_* variables through the same settings loader as
`python -m sseserver` (gunicorn owns the command line); `--bind` and `--workers` are
gunicorn's own. The keep-alive timeout is SSESERVER_KEEPALIVE_TIMEOUT, not gunicorn's
`--keep-alive`.
"""

from __future__ import annotations

import os

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker, GunicornWebWorker

from .app_keys import SETTINGS
from .config import load_settings
from .connections import SSERunner
from .event_loop import resolved_loop
from .gc_schedule import CollectorSchedule
from .open_files import raise_open_files_limit


class SSEWorker(GunicornUVLoopWebWorker):
    def init_process(self) -> None:
        raise_open_files_limit()
        # The event loop SSESERVER_LOOP names, resolved as `python -m sseserver` does.
        if resolved_loop(load_settings([], os.environ).loop) == "uvloop":
            super().init_process()  # aiohttp's uvloop worker: installs uvloop's policy
        else:
            GunicornWebWorker.init_process(self)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: object = self.wsgi  # type: ignore[has-type]
        if not isinstance(app, web.Application):
            raise RuntimeError(
                f"sseserver.gunicorn_worker.SSEWorker needs an aiohttp Application, got "
                f"{app!r}; use 'sseserver.app:app_from_environment()'"
            )

        collector = CollectorSchedule()  # as serve() runs it (gc_schedule.py)

        async def start_collector(app: web.Application) -> None:
            collector.start()

        async def stop_collector(app: web.Application) -> None:
            collector.stop()

        app.on_startup.append(start_collector)
        app.on_cleanup.append(stop_collector)

        async def runner() -> web.AppRunner:
            return SSERunner(
                app,
                app[SETTINGS],
                logger=self.log,
                access_log=self.log.access_log if self.cfg.accesslog else None,
                shutdown_timeout=self.cfg.graceful_timeout / 100 * 95,
            )

        self.wsgi = runner
