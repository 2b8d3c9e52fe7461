"""Every file name the documents and the package's docstrings and comments give (`serving.py`,
`store/redis/log.py`, `tests/conftest.py`, ...) names a file that exists, so a rename or a
removal that leaves a document behind fails here rather than misleading a reader."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
SKIPPED: Final = frozenset({".venv", "node_modules", ".cache", "artifacts", ".git", "build",
                            "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache"})
# A file name in running text: not part of a longer path or word, nor a pattern (`*_x.py`,
# files ending in `_x.py`).
FILE_NAME: Final = re.compile(r"(?<![\w./*-])((?:[\w-]+/)*(?:__)?[A-Za-z][\w-]*\.py)\b")
# Names that are not ours, each with what it is.
NOT_OURS: Final = {
    "locustfile.py": "the locust script performance.md writes out in full",
}


@cache
def python_files() -> frozenset[str]:
    return frozenset(
        path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*.py")
        if not SKIPPED & set(path.relative_to(ROOT).parts)
    )


def exists(name: str) -> bool:
    """`name` is a file of the checkout: as a path from its root, or the end of one."""
    return any(path == name or path.endswith("/" + name) for path in python_files())


def _source_prose(path: Path) -> Iterator[tuple[int, str]]:
    """A module's docstrings and comments, line by line: what a reader takes as prose."""
    text = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                for offset, line in enumerate(body[0].value.value.splitlines()):
                    yield body[0].lineno + offset, line
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def prose() -> Iterator[tuple[str, int, str]]:
    """(where, line number, text) of every document and of the package's prose."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            yield path.relative_to(ROOT).as_posix(), number, line
    for path in sorted((ROOT / "sseserver").rglob("*.py")):
        for number, line in _source_prose(path):
            yield path.relative_to(ROOT).as_posix(), number, line


def test_every_file_a_document_or_docstring_names_exists() -> None:
    missing = [
        f"{where}:{number}: {name}"
        for where, number, line in prose()
        for name in FILE_NAME.findall(line)
        if name not in NOT_OURS and not exists(name)
    ]
    assert missing == []


def test_the_reading_finds_names() -> None:
    """The check above can fail: it finds the names of modules in prose, and knows one that
    is not there."""
    names = {name for _, _, line in prose() for name in FILE_NAME.findall(line)}
    assert {"serving.py", "aisdk/stream.py", "errors.py", "test_layering.py"} <= names
    assert exists("store/redis/log.py")
    assert exists("log.py")
    assert not exists("middleware.py")
    assert not exists("redis/serving.py")
    assert FILE_NAME.findall("`*_functional.py`, ending in `_x.py`; sse.py, a/b.py, __main__.py"
                             ) == ["sse.py", "a/b.py", "__main__.py"]
