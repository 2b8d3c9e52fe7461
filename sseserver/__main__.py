"""`python -m sseserver`: read the options, start the server, print its URL, and stop
gracefully on SIGTERM or SIGINT (SPEC 7):

    signal ─▶ stop listening ─▶ running generations get --shutdown-grace seconds
           ─▶ the rest end with `error: server_shutdown`, upstreams closed
           ─▶ open responses get SHUTDOWN_TIMEOUT to take their last frames ─▶ exit 0
    second signal, at any point ─▶ exit at once (128 + signal number)
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from aiohttp import web

from .access_log import AccessLogger
from .app import create_app
from .config import ConfigError, Settings, load_settings, resolved_provider
from .deprecations import deprecation_warnings

log = logging.getLogger("sseserver")

# How long aiohttp waits for open handlers at shutdown, after generations were ended: a
# subscriber only has its last frames to take by then (a stuck one is cut).
SHUTDOWN_TIMEOUT = 2.0


def exposure_warning(settings: Settings) -> str | None:
    """The loud start-up warning of SPEC 7: the key is reachable by anyone who can reach
    the port, when listening beyond loopback with the anthropic provider and no token."""
    if resolved_provider(settings) != "anthropic" or settings.access_token is not None:
        return None
    if _is_loopback(settings.host):
        return None
    return (
        f"!!! listening on {settings.host} with the anthropic provider and no "
        "--access-token: anyone who can reach this port can spend your API key. Set "
        "--access-token (SSESERVER_ACCESS_TOKEN), and --max-streams-per-client, before "
        "exposing it."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or "" = every address): assume reachable


# Loggers of the HTTP stack under the Anthropic SDK. At DEBUG they log request bodies,
# i.e. users' messages, so they never go below INFO here (ANTHROPIC_LOG=debug still can).
_SDK_LOGGERS = ("anthropic", "httpx", "httpx2", "httpcore", "httpcore2")


def configure_logging(level_name: str) -> None:
    level = logging.getLevelNamesMapping()[level_name.upper()]
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if not os.environ.get("ANTHROPIC_LOG"):
        for name in _SDK_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.INFO))


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """A second SIGTERM/SIGINT: the operator wants out now. A plain signal handler (not
    the event loop's) so it works even if the loop is stuck; the kernel closes every
    socket, upstream connections included, so nothing is billed after this."""
    os.write(2, b"sseserver: second signal, exiting now\n")
    os._exit(128 + signum)


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
    # Signal handlers before anything listens: a supervisor may stop us the moment the
    # URL is printed, and that must be the graceful path, not the default kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        # Everything made at start-up (modules, the SDK's models and clients) lives until
        # exit: moving it out of the collector's reach makes each full collection short,
        # which is where a relay's latency tail came from (issue 6).
        gc.freeze()
        for address in runner.addresses:
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"sseserver listening on http://{shown}:{port}", flush=True)
        await stop.wait()
        for signum in (signal.SIGINT, signal.SIGTERM):
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    for warning in deprecation_warnings(settings.allowed_models):
        log.warning("%s", warning)
    exposure = exposure_warning(settings)
    if exposure is not None:
        log.warning("%s", exposure)
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
