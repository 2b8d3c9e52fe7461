"""The tool file (--tools FILE): a JSON array of tool definitions in the Messages API's own
shape (`name`, `description`, `input_schema`, optionally `strict`), each with an optional
`handler` ("module:function", run by the server) and `needs_approval` (the AI SDK route asks
the user first). A tool without a handler is the client's to run.

Everything is checked at start-up, so a bad file never reaches a request: each problem is
a ValueError naming the tool and what is wrong, which config.py prefixes with the option
and the file's path (docs/protocol.md, "Tools").
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..option_values import read_file

# A tool definition or content block in the Messages API's own shape.
Block = dict[str, Any]
# The API's rule for a tool's name.
NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Names of the API's server tools: an operator's tool of the same name would shadow one.
SERVER_TOOL_NAMES: Final = frozenset({
    "web_search", "web_fetch", "code_execution", "bash_code_execution",
    "text_editor_code_execution", "tool_search_tool_regex", "tool_search_tool_bm25",
})
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_TOOLS: Final = 128
_KEYS: Final = frozenset({
    "name", "description", "input_schema", "strict", "handler", "needs_approval",
})
_SCHEMA_TYPES: Final = frozenset(
    {"object", "array", "string", "number", "integer", "boolean", "null"}
)
Handler = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: what Claude is offered, and who runs it."""

    name: str
    definition: Block  # exactly what the API's `tools` gets
    handler: str | None = None  # "module:function"; None: the client runs it
    needs_approval: bool = False


def load_tool_file(path_text: str) -> tuple[ToolSpec, ...]:
    raw = read_file(path_text, MAX_FILE_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"is not JSON in UTF-8: {exc}") from None
    return tool_specs(data)


def tool_specs(data: object) -> tuple[ToolSpec, ...]:
    """A parsed tool file's tools, each checked, their handlers imported once to prove
    they can be."""
    if not isinstance(data, list):
        raise ValueError("must hold a JSON array of tool definitions")
    if len(data) > MAX_TOOLS:
        raise ValueError(f"holds more than {MAX_TOOLS} tools")
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        spec = _spec(item, f"tools[{index}]")
        if spec.name in seen:
            raise ValueError(f"tool {spec.name!r}: the name is used twice")
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _spec(item: object, where: str) -> ToolSpec:
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1 to 64 letters, digits, _ or -")
    what = f"tool {name!r}"
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)}")
    if name in SERVER_TOOL_NAMES:
        raise ValueError(f"{what}: the name is one of the API's server tools")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{what}: description must be a string")
    schema = item.get("input_schema")
    problem = schema_problem(schema)
    if problem:
        raise ValueError(f"{what}: input_schema {problem}")
    definition: Block = {"name": name, "description": description, "input_schema": schema}
    if "strict" in item:
        if not isinstance(item["strict"], bool):
            raise ValueError(f"{what}: strict must be true or false")
        definition["strict"] = item["strict"]
    needs_approval = item.get("needs_approval", False)
    if not isinstance(needs_approval, bool):
        raise ValueError(f"{what}: needs_approval must be true or false")
    handler = item.get("handler")
    if handler is not None:
        if not isinstance(handler, str):
            raise ValueError(f"{what}: handler must be a string, module:function")
        try:
            resolve_handler(handler)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    elif needs_approval:
        raise ValueError(f"{what}: needs_approval is for tools the server runs (a handler)")
    return ToolSpec(name, definition, handler, needs_approval)


def schema_problem(schema: object) -> str | None:
    """What is wrong with a tool's input schema as the API takes it (an object schema whose
    properties are schemas and whose `required` names them), or None."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    if schema.get("type") != "object":
        return 'must have "type": "object"'
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return "properties must be an object"
    for key, value in properties.items():
        if not isinstance(value, dict):
            return f"properties.{key} must be a schema (an object)"
        kind = value.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        if any(k not in _SCHEMA_TYPES for k in kinds):
            return f"properties.{key}.type {kind!r} is not a JSON Schema type"
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return "required must be a list of property names"
    missing = [r for r in required if r not in properties]
    if missing:
        return f"required names {missing[0]!r}, which is not in properties"
    return None


def resolve_handler(reference: str) -> Handler:
    """The function a "module:function" reference names, imported from the server's
    Python path."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"handler {reference!r} must be module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs the module's code: anything can fail
        raise ValueError(
            f"handler {reference!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"handler {reference!r}: {module_name} has no {attribute}")
    if not callable(target):
        raise ValueError(f"handler {reference!r} is not a function")
    return target  # type: ignore[no-any-return]


def handlers(specs: tuple[ToolSpec, ...]) -> Mapping[str, Handler]:
    """Tool name to its handler, for the tools the server runs."""
    return {s.name: resolve_handler(s.handler) for s in specs if s.handler is not None}
