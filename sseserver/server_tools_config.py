"""The operator's files for Claude's server-side features: remote MCP servers
(--mcp-servers FILE) and named structured-output schemas (--output-schemas FILE).

Both are read and checked once at start-up (docs/operations.md, "Server tools"): each problem
is a ValueError that config.py prefixes with the option. An MCP server's token is never in
the file: the file names the environment variable that holds it (`token_env`), so the file
can be shared and committed, and the token is read from the environment once, into a field
no repr, log line, /healthz answer or error message shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from yarl import URL

from .option_values import read_file
from .tools.definitions import NAME

Block = dict[str, Any]

# A server's or schema's name: the API's rule for a tool's name (it names tools too).
# An environment variable's name as POSIX shells take it.
ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_MCP_FILE_BYTES: Final = 64 * 1024
MAX_MCP_SERVERS: Final = 20
MAX_URL_CHARS: Final = 2048
# Schemas are sent with every request that names one: a file well within a request body.
MAX_SCHEMA_FILE_BYTES: Final = 256 * 1024
MAX_SCHEMAS: Final = 64
_MCP_KEYS: Final = frozenset({"name", "url", "token_env"})
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class McpServer:
    """One remote MCP server the operator offers on every request."""

    name: str
    url: str
    token_env: str | None = None
    # Read from `token_env` at start-up; repr=False keeps it out of every log line.
    token: str | None = field(default=None, repr=False)

    def api_shape(self) -> Block:
        """The Messages API's `mcp_servers` entry, the token included."""
        server: Block = {"type": "url", "name": self.name, "url": self.url}
        if self.token is not None:
            server["authorization_token"] = self.token
        return server


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """A JSON schema a request may ask Claude's reply to follow, by name."""

    name: str
    schema: Block


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"is not JSON in UTF-8: {exc}") from None
    except RecursionError:
        raise ValueError("is nested too deeply") from None


def load_mcp_file(path: str) -> tuple[McpServer, ...]:
    """--mcp-servers: the file's servers, their tokens not yet read (`with_tokens`)."""
    return mcp_servers(_json(read_file(path, MAX_MCP_FILE_BYTES)))


def mcp_servers(data: object) -> tuple[McpServer, ...]:
    if not isinstance(data, list) or not data:
        raise ValueError('must hold a non-empty JSON array of {"name", "url", "token_env"?}')
    if len(data) > MAX_MCP_SERVERS:
        raise ValueError(f"holds more than {MAX_MCP_SERVERS} servers")
    servers: list[McpServer] = []
    for index, item in enumerate(data):
        server = _mcp_server(item, f"servers[{index}]")
        if any(s.name == server.name for s in servers):
            raise ValueError(f"server {server.name!r}: the name is used twice")
        servers.append(server)
    return tuple(servers)


def _mcp_server(item: object, where: str) -> McpServer:
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object")
    if "authorization_token" in item or "token" in item:
        # Never echo the value: the message names only the key.
        raise ValueError(
            f"{where}: a token may not be written in the file; put it in an environment "
            'variable and name that variable in "token_env"'
        )
    unknown = sorted(str(key)[:40] for key in set(item) - _MCP_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    where = f"server {name!r}"
    url = item.get("url")
    if not isinstance(url, str):
        raise ValueError(f"{where}: url must be a string")
    _check_url(url, where)
    token_env = item.get("token_env")
    if token_env is not None and (
        not isinstance(token_env, str) or not ENV_NAME.fullmatch(token_env)
    ):
        raise ValueError(f"{where}: token_env must be the name of an environment variable")
    return McpServer(name, url, token_env)


def _check_url(url: str, where: str) -> None:
    """https, or http to this machine only (a test's local server): the token travels in
    the API's request to the server, and a plain-text hop would show it. No user or
    password in the URL: a secret belongs in `token_env`, which is never shown."""
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"{where}: url is longer than {MAX_URL_CHARS} characters")
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: url is not a URL") from None
    if not parsed.host or parsed.scheme not in ("https", "http"):
        raise ValueError(f"{where}: url must be an https:// URL")
    if parsed.scheme == "http" and parsed.host not in _LOOPBACK_HOSTS:
        raise ValueError(f"{where}: url must be https:// (http:// only to this machine)")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError(
            f"{where}: url may not hold a user or password; name a token in token_env"
        )


def with_tokens(
    servers: tuple[McpServer, ...], environ: Mapping[str, str]
) -> tuple[McpServer, ...]:
    """Each server with the token its `token_env` names, read from `environ`; a variable
    that is not set (or empty) is an error naming the variable, never a value."""
    resolved = []
    for server in servers:
        if server.token_env is None:
            resolved.append(server)
            continue
        token = environ.get(server.token_env, "").strip()
        if not token:
            raise ValueError(
                f"server {server.name!r}: the environment variable {server.token_env} "
                "(token_env) is not set or empty"
            )
        if not token.isascii() or not token.isprintable():
            raise ValueError(
                f"server {server.name!r}: the environment variable {server.token_env} "
                "must hold printable ASCII"
            )
        resolved.append(replace(server, token=token))
    return tuple(resolved)


def load_output_schemas(path: str) -> tuple[OutputSchema, ...]:
    """--output-schemas: a JSON object of name -> JSON schema (an object)."""
    data = _json(read_file(path, MAX_SCHEMA_FILE_BYTES))
    if not isinstance(data, dict) or not data:
        raise ValueError("must hold a non-empty JSON object of name -> JSON schema")
    if len(data) > MAX_SCHEMAS:
        raise ValueError(f"holds more than {MAX_SCHEMAS} schemas")
    schemas = []
    for name, schema in data.items():
        if not NAME.fullmatch(name):
            raise ValueError(
                f"schema name {name[:80]!r} must be 1 to 64 characters of A-Z a-z 0-9 _ -"
            )
        if not isinstance(schema, dict) or not schema:
            raise ValueError(f"schema {name!r} must be a JSON schema (an object)")
        schemas.append(OutputSchema(name, schema))
    return tuple(schemas)
