"""The tool file and the operator's prompt options (docs/protocol.md, "Tools"): a bad file
stops the start with a message that names the file, the tool and the problem; the system
prompt options shape every request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseserver.config import load_settings
from sseserver.errors import ConfigError
from sseserver.tools.definitions import ToolSpec, tool_specs
from sseserver.validation import request_from_data

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
GOOD = {"name": "lookup", "description": "Looks up", "input_schema": SCHEMA,
        "handler": "tests.support.tool_handlers:lookup"}


def _load(tmp_path: Path, data: object) -> tuple[ToolSpec, ...]:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(data))
    return load_settings(["--tools", str(path)], {}).tools


def test_a_good_file_gives_the_api_definitions_and_who_runs_each(tmp_path: Path) -> None:
    client = {"name": "locate", "input_schema": {"type": "object"}, "strict": True}
    specs = _load(tmp_path, [GOOD, client])
    assert [(s.name, s.handler, s.needs_approval) for s in specs] == [
        ("lookup", "tests.support.tool_handlers:lookup", False), ("locate", None, False),
    ]
    assert specs[0].definition == {"name": "lookup", "description": "Looks up",
                                   "input_schema": SCHEMA}
    assert specs[1].definition == {"name": "locate", "description": "",
                                   "input_schema": {"type": "object"}, "strict": True}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x"}, "must hold a JSON array of tool definitions"),
        ([5], "tools[0] must be an object"),
        ([GOOD | {"name": "has space"}], "tools[0]: name must be 1 to 64 letters, digits"),
        ([GOOD | {"input_schema": {"type": "string"}}],
         "tool 'lookup': input_schema must have \"type\": \"object\""),
        ([GOOD | {"input_schema": {"type": "object", "required": ["x"]}}],
         "tool 'lookup': input_schema required names 'x', which is not in properties"),
        ([GOOD | {"input_schema": {"type": "object", "properties": {"q": {"type": "text"}}}}],
         "tool 'lookup': input_schema properties.q.type 'text' is not a JSON Schema type"),
        ([GOOD | {"handler": "no_such_module_here:run"}],
         "tool 'lookup': handler 'no_such_module_here:run' cannot be imported: "
         "ModuleNotFoundError"),
        ([GOOD | {"handler": "tests.support.tool_handlers:missing"}],
         "tool 'lookup': handler 'tests.support.tool_handlers:missing': "
         "tests.support.tool_handlers has no missing"),
        ([GOOD | {"handler": "tests.support.tool_handlers:RUNS.inputs"}],
         "tool 'lookup': handler 'tests.support.tool_handlers:RUNS.inputs' is not a function"),
        ([GOOD | {"handler": "justaname"}], "handler 'justaname' must be module:function"),
        ([GOOD, GOOD], "tool 'lookup': the name is used twice"),
        ([GOOD | {"name": "web_search"}],
         "tool 'web_search': the name is one of the API's server tools"),
        ([GOOD | {"strict": "yes"}], "tool 'lookup': strict must be true or false"),
        ([GOOD | {"type": "custom"}], "tool 'lookup': unknown field(s) type"),
        ([{"name": "c", "input_schema": {"type": "object"}, "needs_approval": True}],
         "tool 'c': needs_approval is for tools the server runs"),
    ],
)
def test_a_bad_file_names_the_file_the_tool_and_the_problem(
    tmp_path: Path, data: object, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, data)
    assert str(error.value).startswith(f"--tools='{tmp_path / 'tools.json'}': ")
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"[", "is not JSON in UTF-8"), (b"\xff[]", "is not JSON in UTF-8"),
     (b" " * (1024 * 1024 + 1), "is larger than 1048576 bytes")],
)
def test_a_file_that_is_not_json_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "tools.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        load_settings(["--tools", str(path)], {})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(["--tools", str(tmp_path / "missing.json")], {})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "input_schema", "handler", "type", "strict",
                                       "description", "needs_approval", "properties",
                                       "required", "x"]), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_is_loaded_or_refused_with_a_value_error(data: Any) -> None:
    try:
        specs = tool_specs(data)
    except ValueError:
        return
    for spec in specs:
        assert spec.definition["input_schema"]["type"] == "object"


def test_the_operators_system_prompt_comes_first(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are the shop's assistant.")
    body = {"messages": [{"role": "user", "content": "hi"}], "system": "Be brief."}
    on = load_settings(["--system-prompt", str(prompt)], {})
    assert request_from_data(body, on).system == "You are the shop's assistant.\n\nBe brief."
    assert request_from_data({"messages": body["messages"]}, on).system == (
        "You are the shop's assistant."
    )
    off = load_settings(["--system-prompt", str(prompt), "--client-system", "off"], {})
    with pytest.raises(Exception, match="This server sets the system prompt itself"):
        request_from_data(body, off)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match=r"--system-prompt='.*empty\.txt': is empty"):
        load_settings(["--system-prompt", str(empty)], {})
    with pytest.raises(ConfigError, match="--client-system='no': must be on or off"):
        load_settings(["--client-system", "no"], {})


def test_the_example_file_loads_and_its_handler_calculates() -> None:
    specs = load_settings(["--tools", "examples/tools.json"], {}).tools
    assert [(s.name, s.handler) for s in specs] == [
        ("calculate", "examples.tools:calculate"), ("browser_locale", None),
    ]
    from examples.tools import calculate

    assert calculate({"expression": "2 * (3 + 4.5)"}) == "15"
    with pytest.raises(ValueError, match="only numbers"):
        calculate({"expression": "__import__('os')"})
