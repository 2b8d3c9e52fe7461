"""Example tool handlers for `--tools examples/tools.json` (docs/protocol.md, "Tools").

A handler takes the call's input as a dict and returns a string, or a list of `text` and
`image` blocks. It may be sync (the server runs it in a worker thread) or async. What it
raises never reaches the model: the server sends an error result instead.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg,
    ast.Mod: operator.mod,
}


def calculate(tool_input: dict[str, Any]) -> str:
    """Arithmetic on numbers only (never eval): "2 * (3 + 4)" -> "14"."""
    tree = ast.parse(str(tool_input["expression"]), mode="eval")
    return f"{_evaluate(tree.body):g}"


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return float(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.operand)))
    raise ValueError("only numbers and + - * / % ** are allowed")
