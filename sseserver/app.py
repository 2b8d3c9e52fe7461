"""create_app(): the aiohttp application, its routes, and what lives as long as it does.

It is a plain app factory, so `python -m sseserver`, tests and other runners share it.
Runners should enable handler cancellation (as `python -m sseserver` does), so a client
that disconnects while nothing is being written is noticed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .aisdk import routes as aisdk_routes
from .app_keys import (
    BODY_BUDGET,
    BUDGETS,
    FANOUT,
    GENERATIONS,
    METRICS,
    MODELS,
    PARSER,
    PROVIDER,
    SETTINGS,
    STATIC_ROOT,
    STORE,
    SUBSCRIBERS,
    VERIFIER,
)
from .bodies import BodyBudget
from .budgets import Budgets
from .config import Settings, load_settings
from .cors import add_cors_headers
from .deprecations import sdk_table
from .fanout import Fanout
from .generations import Generations
from .guard import fallback, json_error_bodies
from .identity import Verifier
from .metrics import Metrics
from .overload import LoopLag
from .providers import create_models, create_provider
from .routes import routes
from .serving import Subscribers
from .store.base import StreamStore
from .store.memory import MemoryStore
from .store.quotas import MemoryQuotas, Quotas
from .tools.loop import with_tools
from .uploads import BodyParser

log = logging.getLogger("sseserver")


def web_root() -> Path:
    """`web/` inside the package in a wheel, or beside it in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "web", package.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError(f"web/ (templates and static files) not found near {package}")


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def create_store(settings: Settings) -> StreamStore:
    """In memory by default; in Redis with --redis-url, imported only then."""
    resume_max_bytes = round(settings.resume_max_mb * 1024 * 1024)
    if settings.redis_url is None:
        return MemoryStore(resume_max_bytes)
    from .store.redis import RedisStore

    return RedisStore(settings.redis_url, resume_window=settings.resume_window,
                      resume_max_bytes=resume_max_bytes,
                      batch_interval=settings.redis_batch_ms / 1000)


def create_quotas(settings: Settings, store: StreamStore) -> Quotas:
    """Limits and budgets where the streams are: the fleet's on Redis."""
    if settings.redis_url is None:
        return MemoryQuotas()
    from .store.redis import RedisStore
    from .store.redis.quotas import RedisQuotas

    assert isinstance(store, RedisStore)
    return RedisQuotas(store.shards, store.prefix, store.token, store.dead_processes)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    """Provider and generations live as long as the app (shutdown: `_stop_generations`)."""
    settings = app[SETTINGS]
    upstream = create_provider(settings)
    provider = with_tools(upstream, settings)
    # Read in the background: start-up never waits for the Models API.
    models = app[MODELS] = create_models(upstream, settings, sdk_table())
    models.start()
    store = create_store(settings)
    await store.open()  # never fails for want of Redis: /healthz says degraded until it is
    app[PROVIDER] = provider
    app[STORE] = store
    lag = LoopLag(settings.max_loop_lag_ms, app[METRICS].loop_lag)
    lag.start()
    quotas = create_quotas(settings, store)
    budgets = None
    if settings.users:
        await app[VERIFIER].open()
        budgets = app[BUDGETS] = Budgets(quotas, settings, app[METRICS])
    app[GENERATIONS] = Generations(store, provider, settings, app[METRICS], lag, quotas,
                                   budgets, models)
    fanout = app[FANOUT] = Fanout(store, settings, app[METRICS])
    app[SUBSCRIBERS] = Subscribers(store, fanout, settings, app[METRICS], app[GENERATIONS])
    heartbeats = asyncio.create_task(fanout.run(), name="heartbeats")
    app[PARSER] = BodyParser(settings)
    log.info("provider: %s (model %s)", provider.name, settings.model)
    yield
    app[PARSER].close()
    lag.stop()
    heartbeats.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await heartbeats
    await app[GENERATIONS].close()
    if settings.users:
        await app[VERIFIER].close()
    await store.close()
    await models.close()
    await provider.close()


async def _stop_generations(app: web.Application) -> None:
    """Graceful shutdown (docs/operations.md, "Graceful shutdown"). The runner has
    stopped accepting connections already; running generations get --shutdown-grace
    seconds, then their streams end with a `server_shutdown` error event, so their
    subscribers return and aiohttp's own wait for open handlers is short."""
    await app[GENERATIONS].drain(app[SETTINGS].shutdown_grace)
    app[SUBSCRIBERS].stopping = True


def app_from_environment() -> web.Application:
    """The app with settings from SSESERVER_* variables, for runners that take a factory
    (gunicorn: see gunicorn_worker.py)."""
    return create_app(load_settings([], os.environ))


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    # No middleware: every route guards itself (guard.py).
    app = web.Application(client_max_size=settings.max_upload_bytes)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BODY_BUDGET] = BodyBudget(settings.max_body_bytes_total)
    if settings.users:
        app[VERIFIER] = Verifier(settings)
    root = web_root()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(root / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.add_routes(routes)
    app.add_routes(aisdk_routes)
    app.router.add_route("*", r"/{tail:[\s\S]*}", fallback)  # last: what no route takes
    app[STATIC_ROOT] = root / "static"
    app.cleanup_ctx.append(_lifetime)
    # on_shutdown runs before aiohttp waits for open handlers: ending the generations
    # there lets every SSE handler finish instead of waiting out the shutdown timeout.
    app.on_shutdown.append(_stop_generations)
    app.on_response_prepare.append(json_error_bodies)
    app.on_response_prepare.append(_add_security_headers)
    app.on_response_prepare.append(add_cors_headers)
    return app
