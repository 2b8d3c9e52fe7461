"""`python -m sseserver`: read the options, start the server, print its URL."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from .access_log import AccessLogger
from .app import create_app
from .config import ConfigError, Settings, load_settings, resolved_provider
from .deprecations import deprecation_warnings

log = logging.getLogger("sseserver")

# How long aiohttp waits for open handlers at shutdown, after generations were ended.
SHUTDOWN_TIMEOUT = 5.0


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    app = create_app(settings)
    # handler_cancellation: a client that disconnects cancels its handler at once, even
    # while the upstream is silent and nothing is being written (SPEC 4).
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"sseserver listening on http://{shown}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    provider = resolved_provider(settings)
    for warning in deprecation_warnings(settings.allowed_models):
        log.warning("%s", warning)
    if provider == "anthropic" and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "!!! listening on %s with the anthropic provider: anyone who can reach this "
            "port can spend your API key.", settings.host
        )
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sseserver: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
