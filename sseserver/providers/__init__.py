"""Providers: who writes the reply. `create_provider` is the one place that picks.

The anthropic provider is imported only when it is picked: a demo or load-test server
needs none of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import Settings, resolved_provider
from ..errors import ConfigError
from .base import ChatMessage, Event, GenerationRequest, Item, Provider, ProviderError, Usage
from .demo import DemoProvider
from .models import ModelCatalog

__all__ = [
    "ChatMessage",
    "DemoProvider",
    "Event",
    "GenerationRequest",
    "Item",
    "Provider",
    "ProviderError",
    "Usage",
    "create_models",
    "create_provider",
]


def create_provider(settings: Settings) -> Provider:
    if resolved_provider(settings) == "demo":
        return DemoProvider(delay_ms=settings.demo_delay_ms, tokens=settings.demo_tokens)
    if not settings.anthropic_api_key:
        raise ConfigError("--provider anthropic needs ANTHROPIC_API_KEY to be set")
    from .anthropic import AnthropicProvider

    return AnthropicProvider(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.upstream_retries,
        prompt_cache=settings.prompt_cache,
        timeout=settings.upstream_timeout,
    )


def create_models(
    provider: Provider, settings: Settings, table: Mapping[str, str]
) -> ModelCatalog:
    """The allowed models' capabilities: read from the Models API for Claude, with the
    SDK's deprecation `table` where it cannot be read; the demo can do everything asked
    of it."""
    if not isinstance(provider, DemoProvider):
        from .anthropic import AnthropicProvider

        if isinstance(provider, AnthropicProvider):
            return ModelCatalog(settings.allowed_models, provider.get_json, table)
    return ModelCatalog(settings.allowed_models, None, table)
