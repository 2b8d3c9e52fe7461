"""Settings: every tuning value, its default, its CLI flag and its environment variable, once.

Settings are read once, from an argv list and an environment mapping passed in (so tests
never touch the real process environment), into a frozen object the rest of the app shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import option_values as values
from .errors import ConfigError
from .option_values import (
    MAX_HEADERS,
    MAX_LINE_BYTES,
    IPNetwork,
    LoopName,
    PromptCache,
    ProviderName,
)
from .server_tools_config import (
    McpServer,
    OutputSchema,
    load_mcp_file,
    load_output_schemas,
    with_tokens,
)
from .tools.definitions import ToolSpec, load_tool_file

# A current Sonnet: the seed demo's model is on the SDK's deprecation table (deprecations.py).
DEFAULT_MODEL = "claude-sonnet-5-5"
ENV_PREFIX = "SSESERVER_"
# Generations per client address beyond loopback when --max-streams-per-client is not set:
# one person with a few tabs. Loopback clients (load tests, a proxy on this host) are not
# limited by default (docs/operations.md, "Limits and timeouts").
DEFAULT_PER_CLIENT = 4
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


@dataclass(frozen=True, slots=True)
class Option:
    field: str
    parse: Callable[[str], Any]
    help: str
    shown_default: str | None = None  # for defaults that are not a plain value
    secret: bool = False  # never echoed in an error message
    metavar: str | None = None  # else the field's last word, upper-cased

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()

    @property
    def file_flag(self) -> str:
        """A secret's file option: the value read from a file, not from the command line
        that any local user can read with `ps`."""
        return self.flag + "-file"

    @property
    def file_env(self) -> str:
        return self.env + "_FILE"


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "address to listen on"),
    Option("port", values.port, "port to listen on (0 picks a free one)"),
    Option(
        "provider",
        values.provider,
        "auto = anthropic when ANTHROPIC_API_KEY is set, else demo",
    ),
    Option("model", str, "default model; requests may pick another from --models"),
    Option(
        "models",
        values.model_list,
        "comma list of models a request may ask for",
        shown_default="the default model",
    ),
    Option("max_tokens", values.positive_int, "default and upper bound for a request's max_tokens"),
    Option(
        "max_thinking_tokens",
        values.thinking_tokens,
        "largest thinking budget a request may ask for (a budget is at least 1024 and "
        "below the request's max_tokens, which counts thinking too); requests think "
        "adaptively unless they say otherwise; 0 = no thinking",
        metavar="N",
    ),
    Option(
        "web_search",
        values.non_negative_int,
        "let requests use Claude's web search, at most N searches per reply (each is "
        "billed); 0 = off",
        metavar="N",
    ),
    Option(
        "web_fetch",
        values.non_negative_int,
        "let requests use Claude's web fetch, at most N page fetches per reply; 0 = off",
        metavar="N",
    ),
    Option(
        "code_execution",
        values.on_off,
        "on: requests may let Claude run code in Anthropic's sandbox (a container that a "
        "later request may reuse); off: a request that asks gets 400",
        shown_default="off",
        metavar="ON|OFF",
    ),
    Option(
        "tool_search",
        values.on_off,
        "on: requests may have Claude find the operator's tools (--tools) by a search, "
        "each tool sent deferred; needs --tools",
        shown_default="off",
        metavar="ON|OFF",
    ),
    Option(
        "mcp_servers",
        load_mcp_file,
        'a JSON file of remote MCP servers, [{"name", "url", "token_env"?}], offered on '
        "every request; token_env names the environment variable holding the server's "
        "token (a token written in the file is refused) (docs/operations.md, \"Server "
        'tools")',
        shown_default="none",
        metavar="FILE",
    ),
    Option(
        "compaction",
        values.on_off,
        "on: the API summarizes a conversation's older turns when it grows long, and the "
        "summary block is sent back with the next request",
        shown_default="off",
        metavar="ON|OFF",
    ),
    Option(
        "output_schemas",
        load_output_schemas,
        "a JSON file of named JSON schemas, {name: schema}; a request naming one in "
        "output_schema gets a reply that follows it",
        shown_default="none",
        metavar="FILE",
    ),
    Option(
        "prompt_cache",
        values.prompt_cache,
        "cache each request's prompt for the next turn to read: off, 5m or 1h (how long "
        "an entry lives; 1h costs more to write)",
        metavar="TTL",
    ),
    Option(
        "system_prompt",
        values.prompt_file,
        "a file whose text is every request's system prompt, placed before any system "
        "prompt the request sends",
        shown_default="none",
        metavar="FILE",
    ),
    Option(
        "client_system",
        values.on_off,
        "on: a request may add its own system prompt; off: one that sends one gets 400",
        shown_default="on",
        metavar="ON|OFF",
    ),
    Option(
        "tools",
        load_tool_file,
        "a JSON file of tool definitions (the Messages API's shape) offered on every "
        'request; a tool with "handler": "module:function" runs on the server, one '
        "without is the client's to run (docs/protocol.md, \"Tools\")",
        shown_default="none (the demo provider: its two example tools)",
        metavar="FILE",
    ),
    Option(
        "tool_timeout",
        values.positive_float,
        "seconds a server-run tool may take; past it the call's result is an error",
        metavar="SECONDS",
    ),
    Option(
        "max_tool_steps",
        values.positive_int,
        "most upstream requests one reply may make while calling server-run tools; past it "
        "the reply ends with stop_reason tool_use",
        metavar="N",
    ),
    Option("demo_delay_ms", values.non_negative_int, "demo provider: pause before each token (ms)"),
    Option(
        "demo_tokens",
        values.positive_int,
        "demo provider: emit exactly N tokens (for load tests)",
        shown_default="the demo text's length",
    ),
    Option(
        "heartbeat", values.positive_float, "seconds of silence after which ': ping' is written"
    ),
    Option("retry_ms", values.non_negative_int, "the 'retry:' value sent to clients (ms)"),
    Option(
        "resume_window",
        values.non_negative_float,
        "seconds a generation waits for a subscriber to come back before its upstream is "
        "cancelled; also how long a finished stream stays resumable",
    ),
    Option(
        "resume_max_mb",
        values.positive_float,
        "most megabytes of frames kept for finished streams (per process); past it the "
        "oldest finished streams are freed first, and a resume of one gets 204",
        metavar="MB",
    ),
    Option(
        "send_timeout",
        values.positive_float,
        "seconds a subscriber may block writes before it is dropped",
    ),
    Option("max_streams", values.positive_int, "concurrent generations for the whole process"),
    Option(
        "max_streams_per_client",
        values.non_negative_int,
        "concurrent generations per client address, 429 beyond (0 = no limit); when not "
        "set, each address beyond loopback gets this many and loopback ones no limit",
        shown_default=f"{DEFAULT_PER_CLIENT} (loopback: no limit)",
        metavar="N",
    ),
    Option(
        "forwarded_allow_ips",
        values.networks,
        "comma list of proxy addresses or networks (127.0.0.1, 10.0.0.0/8) whose "
        "X-Forwarded-For and X-Forwarded-Proto name the client and its scheme, for the "
        "per-client limit, the access log and the cookie's Secure flag; from any other "
        "peer those headers are ignored",
        shown_default="none: the client is the TCP peer",
        metavar="IPS",
    ),
    Option(
        "max_loop_lag_ms",
        values.non_negative_int,
        "refuse new generations (503, Retry-After) while the event loop runs this many ms "
        "behind (the median of the last half second); running streams are never slowed "
        "or cut (0 = off)",
        metavar="MS",
    ),
    Option(
        "access_token",
        values.token,
        "when set, /api/ and /metrics require it: 'Authorization: Bearer TOKEN', or the "
        "cookie that opening /?token=TOKEN sets",
        shown_default="none",
        secret=True,
    ),
    Option(
        "jwt_jwks_url",
        values.jwks_url,
        "users: verify their tokens (RS256, ES256, EdDSA) with the keys of this JWKS, "
        "fetched again for an unknown key id (at most every 30 s); /api/ then needs a "
        "token, and streams belong to the user who started them",
        shown_default="none",
        metavar="URL",
    ),
    Option(
        "jwt_secret_file",
        values.secret_file,
        "users: verify their tokens (HS256) with the secret in this file (at least 32 "
        "bytes; a final line end is not part of it)",
        shown_default="none",
        secret=True,
        metavar="FILE",
    ),
    Option(
        "jwt_audience",
        values.optional_text,
        "the aud a user's token must name (a token with an aud is refused without it)",
        shown_default="none",
        metavar="AUD",
    ),
    Option(
        "jwt_issuer",
        values.optional_text,
        "the iss a user's token must name",
        shown_default="none",
        metavar="ISS",
    ),
    Option(
        "jwt_user_claim",
        values.claim_name,
        "the claim of a user's token that names the user",
        metavar="CLAIM",
    ),
    Option(
        "budget_tokens",
        values.non_negative_int,
        "tokens each user may spend per --budget-window (input and output; cache reads at "
        "a tenth), 429 beyond; a token's sse:budget claim overrides it; needs users "
        "(0 = none)",
        metavar="N",
    ),
    Option(
        "budget_window",
        values.duration,
        "the budget's window, aligned to UTC midnight for 1d: 1d, 12h, 30m or seconds",
        shown_default="1d",
        metavar="DURATION",
    ),
    Option(
        "cors_origins",
        values.origin_list,
        "comma list of origins (https://host[:port]) allowed to call /api/ cross-site",
        shown_default="none (CORS off)",
    ),
    Option(
        "shutdown_grace",
        values.non_negative_float,
        "on SIGTERM/SIGINT, seconds running generations may take to finish before their "
        "streams end with a server_shutdown error",
        metavar="SECONDS",
    ),
    Option("max_message_chars", values.positive_int, "longest accepted message or system prompt"),
    Option(
        "max_body_bytes",
        values.positive_int,
        "largest accepted JSON request body without images or documents",
    ),
    Option(
        "max_upload_bytes",
        values.positive_int,
        "largest accepted JSON request body that holds images or documents (base64 "
        "makes a file a third larger); at least --max-body-bytes",
        metavar="BYTES",
    ),
    Option(
        "max_attachment_bytes",
        values.positive_int,
        "largest image or document a request may hold, decoded",
        metavar="BYTES",
    ),
    Option(
        "document_citations",
        values.on_off,
        "on: documents are sent with citations enabled, and Claude's citations of them "
        "become citation events; off: they are sent without",
        shown_default="on",
        metavar="ON|OFF",
    ),
    Option(
        "max_body_bytes_total",
        values.positive_int,
        "bytes of request bodies held at once, across all requests; a body that would go "
        "beyond gets 503",
        metavar="BYTES",
    ),
    Option(
        "max_header_bytes",
        values.header_bytes,
        "bytes of one request's line and headers together, 431 beyond (and a line stops at "
        f"{MAX_LINE_BYTES} bytes, a head at {MAX_HEADERS} headers)",
        metavar="BYTES",
    ),
    Option(
        "request_timeout",
        values.positive_float,
        "seconds a client may take to send a request's headers (from connecting, or from "
        "their first byte on a kept-alive connection), and again its body (408)",
        metavar="SECONDS",
    ),
    Option(
        "keepalive_timeout",
        values.positive_float,
        "seconds an idle connection is kept open between two requests (an SSE response is "
        "not idle)",
        metavar="SECONDS",
    ),
    Option(
        "max_connections",
        values.non_negative_int,
        "open client connections; one beyond gets 503 and is closed",
        shown_default="0 = half the open-files limit",
        metavar="N",
    ),
    Option(
        "upstream_retries",
        values.non_negative_int,
        "times a failed request to the Anthropic API is retried before its answer",
    ),
    Option(
        "upstream_timeout",
        values.finite_positive_float,
        "seconds the Anthropic API may send nothing (before the reply, or between two of "
        "its events) before the reply ends with an upstream_timeout error; also the "
        "limit for sending the request",
        metavar="SECONDS",
    ),
    Option(
        "redis_url",
        values.redis_url,
        "keep streams in Redis (redis://host:port/db), or a Redis Cluster "
        "(redis+cluster://host:port[,host:port...]), so that several processes or hosts "
        "serve any stream",
        shown_default="none: in this process's memory",
        secret=True,
    ),
    Option(
        "redis_batch_ms",
        values.redis_batch_ms,
        "with --redis-url: a busy writer's batches of frames are at least this many "
        "milliseconds apart (an idle one sends at once), so that each carries more; more "
        "spares Redis CPU per frame, and every frame may wait that long to be shown",
        metavar="MS",
    ),
    Option(
        "workers",
        values.positive_int,
        "worker processes sharing the port (SO_REUSEPORT); more than 1 needs --redis-url",
    ),
    Option(
        "loop",
        values.loop,
        "event loop: uvloop (installed with sseserver on Linux and macOS) is faster per "
        "event; auto = uvloop when importable, else asyncio's own",
    ),
    Option("log_level", values.log_level, "debug, info, warning or error"),
)


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
