"""Typed application keys: what the app holds for the lifetime of the server.

The types are imported for the type checker only, so any module may import its keys
without an import cycle (the SSE route in subscriber.py reads the generations, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .bodies import BodyBudget
    from .budgets import Budgets
    from .config import Settings
    from .fanout import Fanout
    from .generations import Generations
    from .identity import Verifier
    from .metrics import Metrics
    from .providers import Provider
    from .providers.models import ModelCatalog
    from .serving import Subscribers
    from .store.base import StreamStore
    from .uploads import BodyParser

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
PROVIDER: web.AppKey[Provider] = web.AppKey("provider")
MODELS: web.AppKey[ModelCatalog] = web.AppKey("models")
STORE: web.AppKey[StreamStore] = web.AppKey("store")
GENERATIONS: web.AppKey[Generations] = web.AppKey("generations")
STATIC_ROOT: web.AppKey[Path] = web.AppKey("static_root")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
FANOUT: web.AppKey[Fanout] = web.AppKey("fanout")
SUBSCRIBERS: web.AppKey[Subscribers] = web.AppKey("subscribers")
BODY_BUDGET: web.AppKey[BodyBudget] = web.AppKey("body_budget")
PARSER: web.AppKey[BodyParser] = web.AppKey("parser")
# Only when the server has users (identity.py, budgets.py).
VERIFIER: web.AppKey[Verifier] = web.AppKey("verifier")
BUDGETS: web.AppKey[Budgets] = web.AppKey("budgets")
