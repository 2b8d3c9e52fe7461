"""The server-tool options: --web-fetch, --code-execution, --tool-search, --mcp-servers,
--compaction and --output-schemas, from flags and variables; every bad file refused at
start-up naming the option, and an MCP server's token never in a message or a repr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sseserver.config import Settings, load_settings
from sseserver.errors import ConfigError
from sseserver.server_tools_config import McpServer, OutputSchema

TOKEN = "mcp-secret-token-0123456789"


def _tools_file(tmp_path: Path) -> str:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([{
        "name": "lookup", "description": "Look a word up.",
        "input_schema": {"type": "object", "properties": {}},
    }]))
    return str(path)


def _file(tmp_path: Path, data: Any, name: str = "file.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_all_off_by_default() -> None:
    settings = load_settings([], {})
    assert (settings.web_fetch, settings.code_execution, settings.tool_search) == (0, False, False)
    assert (settings.mcp_servers, settings.compaction, settings.output_schemas) == ((), False, ())


def test_switches_from_flags_and_environment(tmp_path: Path) -> None:
    tools = _tools_file(tmp_path)
    settings = load_settings(
        ["--web-fetch", "4", "--code-execution", "on", "--tool-search", "on",
         "--compaction", "on", "--tools", tools], {},
    )
    assert (settings.web_fetch, settings.code_execution, settings.tool_search,
            settings.compaction) == (4, True, True, True)
    env = {"SSESERVER_WEB_FETCH": "2", "SSESERVER_CODE_EXECUTION": "on",
           "SSESERVER_TOOL_SEARCH": "on", "SSESERVER_COMPACTION": "on",
           "SSESERVER_TOOLS": tools}
    settings = load_settings(["--web-fetch", "5", "--compaction", "off"], env)
    assert (settings.web_fetch, settings.code_execution, settings.tool_search,
            settings.compaction) == (5, True, True, False)


@pytest.mark.parametrize(("argv", "named"), [
    (["--web-fetch", "-1"], "--web-fetch='-1': must be 0 or more"),
    (["--web-fetch", "many"], "--web-fetch='many': must be a whole number, 0 or more"),
    (["--code-execution", "yes"], "--code-execution='yes': must be on or off"),
    (["--tool-search", "true"], "--tool-search='true': must be on or off"),
    (["--compaction", "ON"], "--compaction='ON': must be on or off"),
])
def test_bad_switches_name_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(argv, {})
    assert str(error.value) == named


def test_tool_search_needs_operator_tools() -> None:
    with pytest.raises(ConfigError, match=r"^--tool-search on finds the operator's tools: "
                                          r"it needs --tools FILE$"):
        load_settings(["--tool-search", "on"], {})
    assert load_settings(["--tool-search", "off"], {}).tool_search is False


def test_mcp_servers_with_tokens_from_the_environment(tmp_path: Path) -> None:
    path = _file(tmp_path, [
        {"name": "docs", "url": "https://mcp.example.com/sse", "token_env": "DOCS_TOKEN"},
        {"name": "local-1", "url": "http://127.0.0.1:9000/mcp"},
    ])
    settings = load_settings(["--mcp-servers", path], {"DOCS_TOKEN": TOKEN + "\n"})
    assert settings.mcp_servers == (
        McpServer("docs", "https://mcp.example.com/sse", "DOCS_TOKEN", TOKEN),
        McpServer("local-1", "http://127.0.0.1:9000/mcp"),
    )
    assert [s.api_shape() for s in settings.mcp_servers] == [
        {"type": "url", "name": "docs", "url": "https://mcp.example.com/sse",
         "authorization_token": TOKEN},
        {"type": "url", "name": "local-1", "url": "http://127.0.0.1:9000/mcp"},
    ]
    assert TOKEN not in repr(settings)
    assert TOKEN not in repr(settings.mcp_servers)
    assert "DOCS_TOKEN" in repr(settings)
    from_env = load_settings([], {"SSESERVER_MCP_SERVERS": path, "DOCS_TOKEN": TOKEN})
    assert from_env.mcp_servers == settings.mcp_servers


@pytest.mark.parametrize(("data", "message"), [
    ("[", "is not JSON in UTF-8"),
    ({}, 'must hold a non-empty JSON array of {"name", "url", "token_env"?}'),
    ([], 'must hold a non-empty JSON array'),
    (["docs"], "servers[0] must be an object"),
    ([{"name": "docs", "url": "https://a.example", "authorization_token": TOKEN}],
     'servers[0]: a token may not be written in the file; put it in an environment '
     'variable and name that variable in "token_env"'),
    ([{"name": "docs", "url": "https://a.example", "token": TOKEN}],
     "a token may not be written in the file"),
    ([{"name": "docs", "url": "https://a.example", "headers": {}}],
     "servers[0]: unknown key(s) headers"),
    ([{"name": "two words", "url": "https://a.example"}],
     "servers[0]: name must be 1 to 64 characters of A-Z a-z 0-9 _ -"),
    ([{"name": "", "url": "https://a.example"}], "name must be 1 to 64 characters"),
    ([{"name": "x" * 65, "url": "https://a.example"}], "name must be 1 to 64 characters"),
    ([{"name": "docs"}], "server 'docs': url must be a string"),
    ([{"name": "docs", "url": "ftp://a.example"}], "server 'docs': url must be an https:// URL"),
    ([{"name": "docs", "url": "https://"}], "url must be an https:// URL"),
    ([{"name": "docs", "url": "http://mcp.example.com"}],
     "server 'docs': url must be https:// (http:// only to this machine)"),
    ([{"name": "docs", "url": "https://user:" + TOKEN + "@a.example"}],
     "server 'docs': url may not hold a user or password; name a token in token_env"),
    ([{"name": "docs", "url": "https://a.example/" + "x" * 2048}],
     "url is longer than 2048 characters"),
    ([{"name": "docs", "url": "https://a.example", "token_env": "1BAD"}],
     "server 'docs': token_env must be the name of an environment variable"),
    ([{"name": "docs", "url": "https://a.example", "token_env": 3}],
     "token_env must be the name of an environment variable"),
    ([{"name": "docs", "url": "https://a.example"}, {"name": "docs", "url": "https://b.example"}],
     "server 'docs': the name is used twice"),
    ([{"name": f"s{i}", "url": "https://a.example"} for i in range(21)],
     "holds more than 20 servers"),
])
def test_bad_mcp_files_are_refused_without_showing_a_token(
    tmp_path: Path, data: Any, message: str
) -> None:
    path = _file(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_settings(["--mcp-servers", path], {"DOCS_TOKEN": TOKEN})
    assert str(error.value).startswith(f"--mcp-servers={path!r}: ")
    assert message in str(error.value)
    assert TOKEN not in str(error.value)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "--mcp-servers: server 'docs': the environment variable DOCS_TOKEN (token_env) "
         "is not set or empty"),
    ({"DOCS_TOKEN": "  "}, "is not set or empty"),
    ({"DOCS_TOKEN": "tok\x01en" + TOKEN}, "--mcp-servers: server 'docs': the environment "
                                          "variable DOCS_TOKEN must hold printable ASCII"),
])
def test_the_token_variable_must_hold_a_token(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    path = _file(tmp_path, [
        {"name": "docs", "url": "https://a.example", "token_env": "DOCS_TOKEN"},
    ])
    with pytest.raises(ConfigError) as error:
        load_settings(["--mcp-servers", path], env)
    assert message in str(error.value)
    assert TOKEN not in str(error.value)


def test_mcp_file_too_large_or_missing(tmp_path: Path) -> None:
    big = _file(tmp_path, " " * (64 * 1024 + 1))
    with pytest.raises(ConfigError, match="is larger than 65536 bytes"):
        load_settings(["--mcp-servers", big], {})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(["--mcp-servers", str(tmp_path / "none.json")], {})


def test_output_schemas(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}
    path = _file(tmp_path, {"answer": schema, "list_2": {"type": "array"}})
    settings = load_settings(["--output-schemas", path], {})
    assert settings.output_schemas == (
        OutputSchema("answer", schema), OutputSchema("list_2", {"type": "array"}),
    )
    assert load_settings([], {"SSESERVER_OUTPUT_SCHEMAS": path}).output_schemas == (
        settings.output_schemas
    )


@pytest.mark.parametrize(("data", "message"), [
    ("{", "is not JSON in UTF-8"),
    ([], "must hold a non-empty JSON object of name -> JSON schema"),
    ({}, "must hold a non-empty JSON object of name -> JSON schema"),
    ({"bad name": {"type": "object"}}, "schema name 'bad name' must be 1 to 64 characters"),
    ({"": {"type": "object"}}, "schema name '' must be 1 to 64 characters"),
    ({"a": "string"}, "schema 'a' must be a JSON schema (an object)"),
    ({"a": {}}, "schema 'a' must be a JSON schema (an object)"),
    ({f"s{i}": {"type": "object"} for i in range(65)}, "holds more than 64 schemas"),
    ("[" * 100000 + "]" * 100000, "is nested too deeply"),
])
def test_bad_output_schema_files(tmp_path: Path, data: Any, message: str) -> None:
    path = _file(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_settings(["--output-schemas", path], {})
    assert str(error.value).startswith(f"--output-schemas={path!r}: ")
    assert message in str(error.value)


def test_output_schema_file_is_bounded(tmp_path: Path) -> None:
    path = _file(tmp_path, {"a": {"type": "object", "description": "x" * 256 * 1024}})
    with pytest.raises(ConfigError, match="is larger than 262144 bytes"):
        load_settings(["--output-schemas", path], {})


# ---- fuzzed files and values: a ConfigError naming the option, or settings; nothing else ----

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["https://a.example", "http://127.0.0.1:1/x", "http://a.example",
                       "DOCS_TOKEN", "UNSET_VAR", TOKEN, "docs", "bad name", "object"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "url", "token_env", "authorization_token", "token", "type",
                         "answer", "x"]) | st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_FUZZ = settings(max_examples=300, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _outcome(argv: list[str], env: dict[str, str]) -> Settings | str:
    """The settings, or the ConfigError's message (any other exception fails the test)."""
    try:
        return load_settings(argv, env)
    except ConfigError as error:
        return str(error)


@_FUZZ
@given(data=_json_values | st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["docs", "b", "", "x y"]),
     "url": st.sampled_from(["https://a.example", "http://localhost:9/m", "ftp://x", "https://"])},
    optional={"token_env": st.sampled_from(["DOCS_TOKEN", "UNSET_VAR", "1X", ""])},
), max_size=3))
def test_fuzzed_mcp_files(tmp_path: Path, data: Any) -> None:
    path = _file(tmp_path, data, "fuzz-mcp.json")
    settings = _outcome(["--mcp-servers", path], {"DOCS_TOKEN": TOKEN})
    if isinstance(settings, str):
        assert settings.startswith("--mcp-servers")
        assert TOKEN not in settings
        return
    assert settings.mcp_servers
    for server in settings.mcp_servers:
        assert server.token == (TOKEN if server.token_env == "DOCS_TOKEN" else None)
    assert TOKEN not in repr(settings)


@_FUZZ
@given(data=_json_values)
def test_fuzzed_output_schema_files(tmp_path: Path, data: Any) -> None:
    path = _file(tmp_path, data, "fuzz-schemas.json")
    settings = _outcome(["--output-schemas", path], {})
    if isinstance(settings, str):
        assert settings.startswith("--output-schemas")
        return
    assert [s.name for s in settings.output_schemas] == list(data)


@_FUZZ
@given(flag=st.sampled_from(["--web-fetch", "--code-execution", "--tool-search",
                             "--compaction"]),
       value=st.text(max_size=12) | st.sampled_from(["on", "off", "0", "3", "-1"]))
def test_fuzzed_switch_values(flag: str, value: str) -> None:
    outcome = _outcome([f"{flag}={value}"], {})
    assert not isinstance(outcome, str) or outcome.startswith(flag)
