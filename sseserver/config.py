"""Settings: every tuning value, its default, its CLI flag and its environment variable, once.

Settings are read once, from an argv list and an environment mapping passed in (so tests
never touch the real process environment), into a frozen object the rest of the app shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .option_table import OPTIONS, Option
from .option_values import (
    IPNetwork,
    LoopName,
    PromptCache,
    ProviderName,
)
from .server_tools_config import (
    McpServer,
    OutputSchema,
    with_tokens,
)
from .tools.definitions import ToolSpec

# A current Sonnet: the seed demo's model is on the SDK's deprecation table (deprecations.py).
DEFAULT_MODEL = "claude-sonnet-5-5"
# Seconds the upstream may send nothing at all (its pings count) before a reply ends with
# upstream_timeout: twice the minute after which proxies commonly cut an idle connection,
# a silence a healthy stream does not keep, and far below the SDK's own ten minutes, for
# which a stalled upstream would otherwise hold a generation (docs/operations.md,
# "Options").
DEFAULT_UPSTREAM_TIMEOUT = 120.0
# A JWKS is fetched again for an unknown key id at most this often, so tokens with made-up
# key ids cannot turn the server into a flood against the identity provider.
JWKS_MIN_REFRESH = 30.0
@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    provider: ProviderName = "auto"
    model: str = DEFAULT_MODEL
    models: tuple[str, ...] = ()  # empty means "just the default model"
    max_tokens: int = 1024
    max_thinking_tokens: int = 10000  # 0: no thinking
    web_search: int = 0  # searches a reply may make; 0: web search off
    web_fetch: int = 0  # page fetches a reply may make; 0: web fetch off
    code_execution: bool = False
    tool_search: bool = False  # the operator's tools deferred, found by a search tool
    # Remote MCP servers offered on every request (server_tools_config.py); each token is
    # kept out of repr by McpServer itself.
    mcp_servers: tuple[McpServer, ...] = ()
    compaction: bool = False  # the API summarizes older turns of a long conversation
    # Named JSON schemas a request may ask the reply to follow.
    output_schemas: tuple[OutputSchema, ...] = ()
    prompt_cache: PromptCache = "5m"
    # The operator's system prompt, before any a request sends; whether requests may.
    system_prompt: str | None = field(default=None, repr=False)
    client_system: bool = True
    # The operator's tools (tools/definitions.py); the demo's two when empty and offline.
    tools: tuple[ToolSpec, ...] = ()
    tool_timeout: float = 30.0
    max_tool_steps: int = 8
    demo_delay_ms: int = 30
    demo_tokens: int | None = None
    heartbeat: float = 15.0
    retry_ms: int = 3000
    resume_window: float = 10.0
    resume_max_mb: float = 64.0
    send_timeout: float = 30.0
    max_streams: int = 10000
    # None: DEFAULT_PER_CLIENT for addresses beyond loopback, no limit on loopback;
    # 0: no limit for anyone.
    max_streams_per_client: int | None = None
    # The proxies whose X-Forwarded-For/-Proto count (forwarded.py); none by default.
    forwarded_allow_ips: tuple[IPNetwork, ...] = ()
    max_loop_lag_ms: int = 50  # 0 = no admission by event-loop lag
    # repr=False: the token must never reach a log line through a Settings repr.
    access_token: str | None = field(default=None, repr=False)
    # Users (identity.py): keys that sign their tokens, and what a token must say.
    jwt_jwks_url: str | None = None
    jwt_secret_file: bytes | None = field(default=None, repr=False)  # the secret itself
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_user_claim: str = "sub"
    # Not an option: the JWKS refresh bound (JWKS_MIN_REFRESH); tests shorten it.
    jwks_min_refresh: float = JWKS_MIN_REFRESH
    # Tokens per user per window (budgets.py); 0: no budget unless a token carries one.
    budget_tokens: int = 0
    budget_window: float = 86400.0
    cors_origins: tuple[str, ...] = ()
    shutdown_grace: float = 10.0
    max_message_chars: int = 32000
    max_body_bytes: int = 1024 * 1024
    # A body with images or documents (docs/protocol.md, "Attachments").
    max_upload_bytes: int = 64 * 1024 * 1024
    max_attachment_bytes: int = 32 * 1024 * 1024
    document_citations: bool = True
    max_body_bytes_total: int = 64 * 1024 * 1024
    max_header_bytes: int = 32 * 1024
    request_timeout: float = 15.0
    keepalive_timeout: float = 75.0
    max_connections: int = 0  # 0: half the open-files limit (connections.py)
    upstream_retries: int = 2
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    # None: streams in this process's memory. repr=False: the URL may hold a password.
    redis_url: str | None = field(default=None, repr=False)
    redis_batch_ms: float = 2.0  # a busy Redis writer's batches at least this far apart
    workers: int = 1
    loop: LoopName = "auto"
    log_level: str = "info"
    # Read from the Anthropic SDK's own variables; repr=False keeps the key out of any log.
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None

    @property
    def users(self) -> bool:
        """Whether requests are made by users named in verified tokens (identity.py)."""
        return self.jwt_jwks_url is not None or self.jwt_secret_file is not None

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """The models a request may name; the default model is always one of them."""
        if not self.models:
            return (self.model,)
        return self.models if self.model in self.models else (self.model, *self.models)


def is_loopback(host: str) -> bool:
    """Whether an address (or `localhost`) is this machine's loopback; a host name or ""
    (every address) is taken as reachable from elsewhere."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool((mapped or address).is_loopback)


def _defaults() -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(Settings)}


def resolved_provider(settings: Settings) -> ProviderName:
    """`auto` means anthropic when a key is set, else the offline demo."""
    if settings.provider != "auto":
        return settings.provider
    return "anthropic" if settings.anthropic_api_key else "demo"


def build_parser() -> argparse.ArgumentParser:
    defaults = _defaults()
    parser = argparse.ArgumentParser(
        prog="python -m sseserver",
        description=(
            "Stream Claude's replies over Server-Sent Events, with a chat page at /. "
            "Every option can also be set with the environment variable shown. "
            "ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read as the Anthropic SDK reads them."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        default = option.shown_default or _show(defaults[option.field])
        parser.add_argument(
            option.flag,
            dest=option.field,
            metavar=option.metavar or option.field.split("_")[-1].upper(),
            default=None,
            help=f"{option.help} [env {option.env}; default: {default}]",
        )
        if option.secret:
            parser.add_argument(
                option.file_flag,
                dest=option.field + "_file",
                metavar="PATH",
                default=None,
                help=f"read {option.flag} from this file, where `ps` cannot see it (a "
                     f"trailing newline is ignored) [env {option.file_env}]",
            )
    return parser


def secrets_on_command_line(argv: Sequence[str]) -> list[str]:
    """The secret options given a value on the command line: any local user can read a
    process's arguments (`ps`), so the start-up log warns about each."""
    flags = [option.flag for option in OPTIONS if option.secret]
    return [flag for flag in flags
            if any(arg == flag or arg.startswith(flag + "=") for arg in argv)]


def _read_secret(path: str) -> str:
    """A secret file's content, without its trailing newline (what `echo` or an editor
    adds); an OSError says why it cannot be read."""
    with open(path, encoding="utf-8") as file:
        return file.read().rstrip("\r\n")


def _raw_value(option: Option, args: argparse.Namespace,
               environ: Mapping[str, str]) -> tuple[str | None, str]:
    """An option's text and where it came from: its flag, else its variable (for a
    secret, each either as the value or as a file that holds it), else None."""
    flag_file = getattr(args, option.field + "_file", None)
    env_file = environ.get(option.file_env) if option.secret else None
    levels = (
        ((option.flag, getattr(args, option.field)), (option.file_flag, flag_file)),
        ((option.env, environ.get(option.env)), (option.file_env, env_file)),
    )
    for (source, value), (file_source, path) in levels:
        if value is not None and path is not None:
            raise ConfigError(f"give {source} or {file_source}, not both")
        if value is not None:
            return value, source
        if path is not None:
            try:
                return _read_secret(path), f"{file_source}={path!r}"
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ConfigError(f"{file_source}={path!r}: cannot read it: {why}") from None
    return None, option.flag


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv or ()))
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw, source = _raw_value(option, args, environ)
        if raw is None:
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if option.secret else repr(raw)
            where = source if "=" in source else f"{source}={shown}"  # a file names itself
            raise ConfigError(f"{where}: {exc}") from None
    values["anthropic_api_key"] = environ.get("ANTHROPIC_API_KEY") or None
    values["anthropic_base_url"] = environ.get("ANTHROPIC_BASE_URL") or None
    if "mcp_servers" in values:
        try:
            values["mcp_servers"] = with_tokens(values["mcp_servers"], environ)
        except ValueError as exc:
            raise ConfigError(f"--mcp-servers: {exc}") from None
    settings = Settings(**values)
    if settings.tool_search and not settings.tools:
        raise ConfigError(
            "--tool-search on finds the operator's tools: it needs --tools FILE"
        )
    if settings.max_upload_bytes < settings.max_body_bytes:
        raise ConfigError(
            f"--max-upload-bytes {settings.max_upload_bytes} is less than --max-body-bytes "
            f"{settings.max_body_bytes}: a body with attachments may be at least as large "
            "as one without"
        )
    if settings.users and settings.access_token is not None:
        raise ConfigError(
            "--access-token is the single-user mode: leave it out with --jwt-jwks-url or "
            "--jwt-secret-file, whose tokens name each user"
        )
    if settings.budget_tokens and not settings.users:
        raise ConfigError(
            "--budget-tokens counts per user: it needs --jwt-jwks-url or --jwt-secret-file"
        )
    if settings.workers > 1 and settings.redis_url is None:
        # Each process would hold its own streams: a reconnect landing on another
        # worker would find nothing, and DELETE would miss the generation.
        raise ConfigError(
            f"--workers {settings.workers} needs --redis-url (SSESERVER_REDIS_URL): "
            "worker processes share streams only through Redis"
        )
    return settings
