"""The options' kinds of value and how each option's text becomes one (config.py,
`OPTIONS`): a parser per kind, raising ValueError with the reason, which `load_settings`
turns into a ConfigError naming the flag or variable.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, get_args

ProviderName = Literal["auto", "anthropic", "demo"]
LoopName = Literal["auto", "asyncio", "uvloop"]
LOOPS: tuple[LoopName, ...] = get_args(LoopName)
PromptCache = Literal["off", "5m", "1h"]
PROMPT_CACHES: tuple[PromptCache, ...] = get_args(PromptCache)

# A request head's bounds besides --max-header-bytes (connections.py): the request line and
# each header line (aiohttp's own default, nginx's buffer size), and the number of headers
# (a browser sends about 20). The smallest --max-header-bytes is a browser's head with a
# few cookies.
MAX_LINE_BYTES = 8190
MAX_HEADERS = 100
MIN_HEADER_BYTES = 4096

# The API's smallest thinking budget (ThinkingConfigEnabledParam: at least 1,024).
MIN_THINKING_BUDGET = 1024

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _int(text: str, accepts: str) -> int:
    """A whole number, or a ValueError that says what the option accepts (Python's own
    message names neither)."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be {accepts}") from None


def _float(text: str, accepts: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be {accepts}") from None


def positive_int(text: str) -> int:
    value = _int(text, "a whole number, at least 1")
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text, "a whole number, 0 or more")
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text, "a number, 0 or more")
    if not value >= 0:  # also refuses NaN
        raise ValueError("must be 0 or more")
    return value


def positive_float(text: str) -> float:
    value = _float(text, "a number more than 0")
    if not value > 0:
        raise ValueError("must be more than 0")
    return value


# A Redis writer's batches may be spaced at most this far apart: each frame may wait that
# long for its batch.
MAX_REDIS_BATCH_MS = 100.0


def redis_batch_ms(text: str) -> float:
    value = _float(text, f"a number of milliseconds from 0 to {MAX_REDIS_BATCH_MS:g}")
    if not 0 <= value <= MAX_REDIS_BATCH_MS:  # also refuses NaN
        raise ValueError(f"must be from 0 to {MAX_REDIS_BATCH_MS:g}")
    return value


def finite_positive_float(text: str) -> float:
    """A timeout handed to a library's timer: more than 0 and finite, since "inf" would
    mean no timeout at all, which is what the option exists to prevent."""
    value = float(text)
    if not 0 < value < float("inf"):  # also refuses NaN
        raise ValueError("must be more than 0 and finite")
    return value


def header_bytes(text: str) -> int:
    value = _int(text, f"a whole number of bytes, at least {MIN_HEADER_BYTES}")
    if value < MIN_HEADER_BYTES:
        raise ValueError(f"must be at least {MIN_HEADER_BYTES}")
    return value


def port(text: str) -> int:
    value = _int(text, "a whole number, 0..65535")
    if not 0 <= value <= 65535:
        raise ValueError("must be 0..65535")
    return value


def redis_url(text: str) -> str:
    if text.startswith("redis+cluster://"):
        hosts = text[len("redis+cluster://"):].split("/", 1)[0].rpartition("@")[2]
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError("a redis+cluster:// URL lists host:port[,host:port...]")
        return text
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss://, unix:// or redis+cluster:// URL")
    return text


def model_list(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise ValueError("must name at least one model")
    return models


def token(text: str) -> str | None:
    token = text.strip()
    if not token:
        return None  # an empty variable means "no token", as for ANTHROPIC_API_KEY
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("must be at least 16 printable ASCII characters without spaces")
    return token


def origin_list(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        # An origin is scheme://host[:port], exactly what a browser sends in Origin.
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ValueError(f"{origin!r} is not an origin like https://chat.example.com")
    return origins


def networks(text: str) -> tuple[IPNetwork, ...]:
    networks = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ValueError(
                f"{exc} (give addresses or networks like 10.0.0.0/8; 0.0.0.0/0,::/0 trusts "
                "every peer)"
            ) from None
    return tuple(networks)


def provider(text: str) -> str:
    if text not in ("auto", "anthropic", "demo"):
        raise ValueError("must be auto, anthropic or demo")
    return text


def loop(text: str) -> str:
    if text not in LOOPS:
        raise ValueError("must be auto, asyncio or uvloop")
    return text


def thinking_tokens(text: str) -> int:
    value = _int(text, f"0 (no thinking) or a whole number, at least {MIN_THINKING_BUDGET}")
    if value != 0 and value < MIN_THINKING_BUDGET:
        raise ValueError(f"must be 0 (no thinking) or at least {MIN_THINKING_BUDGET}, "
                         "the API's smallest thinking budget")
    return value


def prompt_cache(text: str) -> str:
    if text not in PROMPT_CACHES:
        raise ValueError("must be off, 5m or 1h")
    return text


# The longest system prompt file: well within what the API takes.
MAX_PROMPT_FILE_BYTES = 256 * 1024


def read_file(path: str, max_bytes: int) -> bytes:
    """A file an option names, read whole, or a ValueError that says why: at most
    `max_bytes`, so an option can never make the server read without bound."""
    try:
        with open(path, "rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise ValueError(f"is larger than {max_bytes} bytes")
    return raw


def prompt_file(text: str) -> str:
    """A system prompt from a file: its UTF-8 text, not empty."""
    raw = read_file(text, MAX_PROMPT_FILE_BYTES)
    try:
        prompt = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    if not prompt.strip():
        raise ValueError("is empty")
    return prompt


def on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError("must be on or off")
    return text == "on"


def log_level(text: str) -> str:
    level = text.lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError("must be debug, info, warning or error")
    return level


# An HS256 key at least as long as the hash's output (RFC 7518, 3.2).
MIN_JWT_SECRET_BYTES = 32
MAX_JWT_SECRET_BYTES = 4096


def jwks_url(text: str) -> str:
    if not text.startswith(("https://", "http://")) or len(text) <= len("http://"):
        raise ValueError("must be an https:// (or http://) URL")
    return text


def secret_file(text: str) -> bytes:
    """An HS256 secret from a file: its bytes, without the line end an editor or `echo`
    adds; never from argv, where `ps` shows it."""
    secret = read_file(text, MAX_JWT_SECRET_BYTES).rstrip(b"\r\n")
    if len(secret) < MIN_JWT_SECRET_BYTES:
        raise ValueError(f"must hold at least {MIN_JWT_SECRET_BYTES} bytes of secret")
    return secret


def claim_name(text: str) -> str:
    name = text.strip()
    if not name or not name.isprintable() or len(name) > 256:
        raise ValueError("must be a claim name (1 to 256 printable characters)")
    return name


def optional_text(text: str) -> str | None:
    """An audience or issuer: compared exactly; an empty value means none."""
    value = text.strip()
    if value and not value.isprintable():
        raise ValueError("must be printable text")
    return value or None


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """Seconds, or a number with s, m, h or d: `1d`, `12h`, `30m`, `3600`."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError("must be a duration such as 1d, 12h, 30m or 3600 (seconds)") from None
    if not 60 <= seconds <= 366 * 86400:
        raise ValueError("must be from 1 minute to 366 days")
    return seconds
