"""Warn about configured models the installed Anthropic SDK lists as deprecated.

The table is read from the SDK (it ships one with end-of-life dates), never copied here,
so upgrading the SDK updates the warnings. It is read from the SDK's own file, without
importing the SDK: that import costs about 50 MB, which a demo server does not need.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path

_TABLE_FILE = ("_data", "deprecated_models.py")


def sdk_table() -> Mapping[str, str]:
    """Model id to its end of life, as the installed SDK lists them (empty if it moved)."""
    spec = importlib.util.find_spec("anthropic")  # finds the package, does not run it
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations)), *_TABLE_FILE)
    module_spec = importlib.util.spec_from_file_location("_sdk_deprecated_models", path)
    if module_spec is None or module_spec.loader is None or not path.is_file():
        return {}  # a future SDK may move it; then there is nothing to warn about
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    table = getattr(module, "DEPRECATED_MODELS", {})
    return table if isinstance(table, dict) else {}


def deprecation_warnings(
    models: Iterable[str], table: Mapping[str, str] | None = None
) -> list[str]:
    table = sdk_table() if table is None else table
    return [
        f"model {model!r} is deprecated by Anthropic; end of life {table[model]}"
        for model in models
        if model in table
    ]
