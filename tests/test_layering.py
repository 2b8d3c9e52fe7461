"""The package's layering, checked on its source rather than kept by care, so that the
pipeline docs/architecture.md draws ("The pipeline") stays true:

- `store/` and `providers/` never import the HTTP edge: only each other's own modules and
  the foundation below everything (errors, ids, sse, metrics, config, option_table,
  option_values), and
  not aiohttp's server;
- `sse`, `ids`, `errors` and `metrics` import nothing of ours but `errors` (every layer
  raises from there);
- only `app` imports `aisdk/` (the AI SDK's routes are an add-on to the app);
- no import cycle at run time: imports under `if TYPE_CHECKING:` are left out (`app_keys.py`
  names every type it keys that way), and every module imports first and alone, as
  aiohttp's own tests/test_circular_imports.py checks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Final

import sseserver

PACKAGE: Final = Path(sseserver.__file__).parent
FOUNDATION: Final = frozenset({
    "errors", "ids", "sse", "metrics", "config", "option_table", "option_values"})
LEAVES: Final = frozenset({"sse", "ids", "errors", "metrics"})
SERVER_SIDE: Final = ("aiohttp.web", "aiohttp_jinja2")


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name below `sseserver` ("" for the root)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The absolute names an import statement of `module` names (and, for `from X import
    Y`, X.Y when that is a module of ours)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        is_package = modules()[module].name == "__init__.py"
        base = ["sseserver", *module.split(".")] if module else ["sseserver"]
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    yield target
    for alias in node.names:
        yield f"{target}.{alias.name}"


class _Imports(ast.NodeVisitor):
    """The import statements of a module; with `runtime`, only those that run when it is
    imported: not under `if TYPE_CHECKING:`, not inside a function."""

    def __init__(self, runtime: bool) -> None:
        self.runtime = runtime
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append(node)

    visit_ImportFrom = visit_Import

    def visit_If(self, node: ast.If) -> None:
        if self.runtime and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.orelse:
                self.visit(inner)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.runtime:
            self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef


def imports(module: str, *, runtime: bool = False) -> set[str]:
    """What `module` imports: ours as names below `sseserver` ("" for the root package,
    with every package a name passes through that `module` is not in), anything else by
    its full name."""
    reader = _Imports(runtime)
    reader.visit(ast.parse(modules()[module].read_text(encoding="utf-8")))
    names: set[str] = set()
    for node in reader.found:
        for name in _imported(module, node):
            if name == "sseserver" or name.startswith("sseserver."):
                ours = name.removeprefix("sseserver").removeprefix(".")
                parts = ours.split(".") if ours else []
                for i in range(len(parts) + 1):  # a package's __init__ runs first...
                    name = ".".join(parts[:i])
                    inside = i < len(parts) and (not name or module.startswith(name + "."))
                    if name in modules() and not inside:  # ...unless it is running already
                        names.add(name)
            else:
                names.add(name)
    names.discard(module)
    return names


def ours(names: set[str]) -> set[str]:
    return {name for name in names if name in modules()}


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_store_and_providers_never_import_the_http_edge() -> None:
    wrong = {}
    for module in modules():
        layer = _layer(module)
        if layer not in ("store", "providers"):
            continue
        allowed = {"", layer} | FOUNDATION
        names = imports(module)
        bad = {n for n in ours(names) if _layer(n) not in allowed}
        bad |= {n for n in names if n.startswith(SERVER_SIDE)}
        if bad:
            wrong[module] = sorted(bad)
    assert wrong == {}


def test_the_foundation_imports_nothing_of_ours_but_errors() -> None:
    wrong = {m: sorted(ours(imports(m)) - {"", "errors"}) for m in LEAVES}
    assert {m: names for m, names in wrong.items() if names} == {}


def test_only_app_imports_aisdk() -> None:
    importers = {m for m in modules() if _layer(m) != "aisdk"
                 and any(_layer(n) == "aisdk" for n in ours(imports(m)))}
    assert importers == {"app"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_at_run_time() -> None:
    graph = {m: ours(imports(m, runtime=True)) for m in modules()}
    assert _cycles(graph) == []


def test_every_module_imports_first_and_alone() -> None:
    """A cycle hidden from the source reading above (an import inside a try, say) still
    fails here: each module is imported in a fresh package state, with warnings as errors,
    in one child process."""
    names = ["sseserver" + (f".{m}" if m else "") for m in modules()
             if not m.endswith("__main__")]  # a program, run rather than imported
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'sseserver']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_reading_sees_imports() -> None:
    """The checks above can fail: the reading finds what a module imports, at run time and
    for the type checker alone."""
    keys = "app_keys"
    assert {keys, "fanout", "aisdk", "aisdk.routes", "store.memory"} <= ours(imports("app"))
    assert "store.redis" in ours(imports("app")) - ours(imports("app", runtime=True))
    assert {"bodies", "serving"} <= ours(imports(keys)) - ours(imports(keys, runtime=True))
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
