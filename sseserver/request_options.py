"""A request's choices of Claude's server tools and output (docs/protocol.md, "Requests"):
`web_search`, `web_fetch`, `code_execution`, `tool_search`, `container`, `effort` and
`output_schema`, checked against what the operator turned on, with a 400 naming the field.

The native JSON body, the GET query (where every value is text: digits become a number)
and the AI SDK route's body all come here, so each field is refused the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .config import Settings
from .errors import BadRequest
from .ids import API_ID
from .providers.base import Block
from .providers.models import EFFORTS

FIELDS: Final = frozenset({
    "web_search", "web_fetch", "code_execution", "tool_search", "container", "effort",
    "output_schema",
})


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What a request asked for, checked: the GenerationRequest fields they become."""

    web_search: int = 0
    web_fetch: int = 0
    code_execution: bool = False
    tool_search: bool = False
    container: str | None = None
    output_config: Block | None = None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uses(value: object, name: str, what: str, bound: int, feature: str) -> int:
    """A count of uses: "off" (or absent) 0, "on" the operator's bound, or 1..bound."""
    if value is None or value == "off":
        return 0
    if value != "on" and not _is_int(value):
        raise BadRequest(f'{name} must be "off", "on" or a number of {what}.')
    if not bound:
        raise BadRequest(f"{feature} is not enabled on this server.")
    if value == "on":
        return bound
    assert isinstance(value, int)
    if not 1 <= value <= bound:
        raise BadRequest(f"{name} must be from 1 to {bound} {what}.")
    return value


def _switch(value: object, name: str, allowed: bool, feature: str) -> bool:
    """"on"/"off" (JSON true/false too; absent is off); on where the operator has it off
    is refused, so a client learns at once rather than by a reply without it."""
    if value is None or value == "off" or value is False:
        return False
    if value != "on" and value is not True:
        raise BadRequest(f'{name} must be "on" or "off".')
    if not allowed:
        raise BadRequest(f"{feature} is not enabled on this server.")
    return True


def _container(value: object, code_execution: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not API_ID.fullmatch(value):
        raise BadRequest(
            "container must be a container id from an earlier reply's container event "
            "(1 to 128 characters of A-Z a-z 0-9 _ -)."
        )
    if not code_execution:
        raise BadRequest('container needs code_execution "on" in the same request.')
    return value


def _output_config(effort: object, schema_name: object, settings: Settings) -> Block | None:
    config: Block = {}
    if effort is not None:
        if not isinstance(effort, str) or effort not in EFFORTS:
            raise BadRequest(f"effort must be one of {', '.join(EFFORTS)}.")
        config["effort"] = effort
    if schema_name is not None:
        schemas = {schema.name: schema.schema for schema in settings.output_schemas}
        if not schemas:
            raise BadRequest("Structured outputs are not enabled on this server "
                             "(no output schemas); leave output_schema out.")
        if not isinstance(schema_name, str) or schema_name not in schemas:
            raise BadRequest(
                f"output_schema must name one of this server's schemas: "
                f"{', '.join(sorted(schemas))[:300]}."
            )
        config["format"] = {"type": "json_schema", "schema": schemas[schema_name]}
    return config or None


def server_options(get: Callable[[str], Any], settings: Settings) -> ServerOptions:
    """The request's options, each read with `get` (None when absent)."""
    code_execution = _switch(get("code_execution"), "code_execution",
                             settings.code_execution, "Code execution")
    return ServerOptions(
        web_search=_uses(get("web_search"), "web_search", "searches", settings.web_search,
                         "Web search"),
        web_fetch=_uses(get("web_fetch"), "web_fetch", "fetches", settings.web_fetch,
                        "Web fetch"),
        code_execution=code_execution,
        tool_search=_switch(get("tool_search"), "tool_search", settings.tool_search,
                            "Tool search"),
        container=_container(get("container"), code_execution),
        output_config=_output_config(get("effort"), get("output_schema"), settings),
    )
