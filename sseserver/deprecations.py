"""Warn about configured models the installed Anthropic SDK lists as deprecated.

The table is read from the SDK (it ships one with end-of-life dates), never copied here,
so upgrading the SDK updates the warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _sdk_table() -> Mapping[str, str]:
    try:
        from anthropic._data import DEPRECATED_MODELS
    except ImportError:  # a future SDK may move it; then there is nothing to warn about
        return {}
    return DEPRECATED_MODELS


def deprecation_warnings(models: Iterable[str]) -> list[str]:
    table = _sdk_table()
    return [
        f"model {model!r} is deprecated by Anthropic; end of life {table[model]}"
        for model in models
        if model in table
    ]
