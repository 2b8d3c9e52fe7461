"""Typed application keys: what the app holds for the lifetime of the server."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .bodies import BodyBudget
from .config import Settings
from .fanout import Fanout
from .generations import Generations
from .metrics import Metrics
from .providers import Provider
from .store.base import StreamStore
from .subscriber import Subscribers

SETTINGS = web.AppKey("settings", Settings)
PROVIDER = web.AppKey("provider", Provider)
STORE = web.AppKey("store", StreamStore)
GENERATIONS = web.AppKey("generations", Generations)
STATIC_ROOT = web.AppKey("static_root", Path)
METRICS = web.AppKey("metrics", Metrics)
FANOUT = web.AppKey("fanout", Fanout)
SUBSCRIBERS = web.AppKey("subscribers", Subscribers)
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)
