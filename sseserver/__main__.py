"""`python -m sseserver`: read the options, warn about risky ones, start the server (or its
workers, supervisor.py) and print its URL. Running and stopping it is `server.py`'s."""

from __future__ import annotations

import dataclasses
import errno
import logging
import sys
from collections.abc import Sequence

from .config import (
    Settings,
    is_loopback,
    load_settings,
    resolved_provider,
    secrets_on_command_line,
)
from .deprecations import deprecation_warnings
from .errors import ConfigError
from .event_loop import resolved_loop, run
from .server import configure_logging, serve
from .supervisor import run_workers

__all__ = ["configure_logging", "exposure_warning", "listen_error", "main"]

log = logging.getLogger("sseserver")


def exposure_warning(settings: Settings) -> str | None:
    """The loud start-up warning: the key is reachable by anyone who can reach
    the port, when listening beyond loopback with the anthropic provider and no token."""
    if resolved_provider(settings) != "anthropic" or settings.access_token is not None:
        return None
    if is_loopback(settings.host):
        return None
    return (
        f"!!! listening on {settings.host} with the anthropic provider and no "
        "--access-token: anyone who can reach this port can spend your API key. Set "
        "--access-token-file (or SSESERVER_ACCESS_TOKEN) before exposing it."
    )


def listen_error(settings: Settings, exc: OSError) -> str:
    """One line that names the port and what to do; the errno's own words say neither."""
    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"port {settings.port} is already in use on {settings.host} (another "
                "sseserver, or `make run`?): stop that process, or pick another port with "
                "--port N (--port 0 picks a free one)")
    if exc.errno == errno.EACCES:
        return (f"no permission to listen on {where}: ports below 1024 need privileges; "
                "pick another with --port N")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {settings.host} is not an address of this machine"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, with_pid=settings.workers > 1)
    for warning in deprecation_warnings(settings.allowed_models):
        log.warning("%s", warning)
    if settings.forwarded_allow_ips:
        log.info("client address and scheme from X-Forwarded-For/-Proto when the peer is "
                 "in %s", ", ".join(map(str, settings.forwarded_allow_ips)))
    for flag in secrets_on_command_line(argv):
        log.warning("%s was given on the command line, where any user of this machine can "
                    "read it (ps, /proc): use %s-file or the variable instead", flag, flag)
    exposure = exposure_warning(settings)
    if exposure is not None:
        log.warning("%s", exposure)
    if settings.redis_url is not None:
        try:
            import redis  # noqa: F401  (the optional extra)
        except ImportError:
            print("sseserver: --redis-url needs the redis client: "
                  "pip install 'sseserver[redis]'", file=sys.stderr)
            return 2
    try:
        settings = dataclasses.replace(settings, loop=resolved_loop(settings.loop))
        log.info("event loop: %s", settings.loop)
        if settings.workers > 1:
            return run_workers(settings)
        run(serve(settings), settings.loop)
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sseserver: {listen_error(settings, exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
