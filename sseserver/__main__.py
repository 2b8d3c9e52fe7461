"""`python -m sseserver`: read the options, start the server (or its workers), print its URL."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from .config import ConfigError, load_settings, resolved_provider
from .deprecations import deprecation_warnings
from .server import run_workers, serve, setup_logging

log = logging.getLogger("sseserver")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"sseserver: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    provider = resolved_provider(settings)
    for warning in deprecation_warnings(settings.allowed_models):
        log.warning("%s", warning)
    if provider == "anthropic" and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "!!! listening on %s with the anthropic provider: anyone who can reach this "
            "port can spend your API key.", settings.host
        )
    if settings.redis_url is not None:
        try:
            import redis  # noqa: F401  (the optional extra)
        except ImportError:
            print("sseserver: --redis-url needs the redis client: "
                  "pip install 'sseserver[redis]'", file=sys.stderr)
            return 2
    try:
        if settings.workers > 1:
            return run_workers(settings)
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
