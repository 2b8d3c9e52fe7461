"""Every option of `python -m sseserver`, in the order `--help` lists them: its flag, its
environment variable, the parser of its value and its help text. config.py reads them
into Settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import option_values as values
from .option_values import MAX_HEADERS, MAX_LINE_BYTES
from .server_tools_config import load_mcp_file, load_output_schemas
from .tools.definitions import load_tool_file

ENV_PREFIX = "SSESERVER_"
# Generations per client address beyond loopback when --max-streams-per-client is not set:
# one person with a few tabs. Loopback clients (load tests, a proxy on this host) are not
# limited by default (docs/operations.md, "Limits and timeouts").
DEFAULT_PER_CLIENT = 4


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
