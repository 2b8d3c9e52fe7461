"""Settings: flags over environment over defaults, and errors that name the option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sseserver.config import Settings, load_settings, resolved_provider, secrets_on_command_line
from sseserver.errors import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    """What a run without flags or variables gets (docs/operations.md, "Options")."""
    settings = load_settings([], {})
    assert (settings.host, settings.port, settings.provider) == ("127.0.0.1", 8080, "auto")
    assert settings.model == "claude-sonnet-5-5"
    assert settings.allowed_models == ("claude-sonnet-5-5",)
    assert (settings.max_tokens, settings.demo_delay_ms, settings.demo_tokens) == (1024, 30, None)
    assert (settings.heartbeat, settings.retry_ms, settings.resume_window) == (15, 3000, 10)
    assert (settings.send_timeout, settings.max_streams, settings.max_message_chars) == (
        30, 10000, 32000
    )
    # Thinking on (adaptive unless asked otherwise), web search off, a 5-minute cache.
    assert (settings.max_thinking_tokens, settings.web_search, settings.prompt_cache) == (
        10000, 0, "5m"
    )
    # A silent upstream ends a reply after two minutes, not after the SDK's ten.
    assert (settings.upstream_retries, settings.upstream_timeout) == (2, 120)


def test_flags_win_over_environment_which_wins_over_defaults() -> None:
    env = {"SSESERVER_PORT": "9001", "SSESERVER_HEARTBEAT": "2.5", "SSESERVER_MODEL": "m-env"}
    settings = load_settings(["--port", "9002"], env)
    assert settings.port == 9002
    assert settings.heartbeat == 2.5
    assert settings.model == "m-env"


def test_models_list_always_allows_the_default() -> None:
    settings = load_settings(["--models", " a, b ,,"], {})
    assert settings.models == ("a", "b")
    assert settings.allowed_models == ("claude-sonnet-5-5", "a", "b")


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--port", "70000"], {}, "--port"),
        (["--resume-window", "nan"], {}, "--resume-window"),
        (["--send-timeout", "0"], {}, "--send-timeout"),
        (["--provider", "openai"], {}, "--provider"),
        (["--models", ","], {}, "--models"),
        (["--log-level", "loud"], {}, "--log-level"),
        ([], {"SSESERVER_DEMO_TOKENS": "0"}, "SSESERVER_DEMO_TOKENS"),
        ([], {"SSESERVER_RETRY_MS": "1.5"}, "SSESERVER_RETRY_MS"),
        (["--max-thinking-tokens", "1023"], {}, "--max-thinking-tokens"),
        (["--max-thinking-tokens", "-1"], {}, "--max-thinking-tokens"),
        ([], {"SSESERVER_WEB_SEARCH": "-2"}, "SSESERVER_WEB_SEARCH"),
        ([], {"SSESERVER_WEB_SEARCH": "on"}, "SSESERVER_WEB_SEARCH"),
        (["--prompt-cache", "10m"], {}, "--prompt-cache"),
        (["--upstream-timeout", "0"], {}, "--upstream-timeout='0': must be more than 0"),
        (["--upstream-timeout", "inf"], {}, "--upstream-timeout='inf': must be more than 0 and"),
        (["--upstream-timeout", "nan"], {}, "--upstream-timeout='nan'"),
        ([], {"SSESERVER_UPSTREAM_TIMEOUT": "-1"}, "SSESERVER_UPSTREAM_TIMEOUT='-1'"),
        ([], {"SSESERVER_UPSTREAM_TIMEOUT": "2m"}, "SSESERVER_UPSTREAM_TIMEOUT='2m'"),
    ],
)
def test_bad_values_name_their_option(argv: list[str], env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(argv, env)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--web-search", "yes"], {}, "--web-search='yes': must be a whole number, 0 or more"),
        (["--max-tokens", "many"], {}, "--max-tokens='many': must be a whole number, at least 1"),
        (["--port", "http"], {}, "--port='http': must be a whole number, 0..65535"),
        (["--heartbeat", "soon"], {}, "--heartbeat='soon': must be a number more than 0"),
        ([], {"SSESERVER_RESUME_WINDOW": "10s"},
         "SSESERVER_RESUME_WINDOW='10s': must be a number, 0 or more"),
        (["--max-thinking-tokens", "lots"], {},
         "--max-thinking-tokens='lots': must be 0 (no thinking) or a whole number, at least 1024"),
        (["--max-header-bytes", "8k"], {},
         "--max-header-bytes='8k': must be a whole number of bytes, at least 4096"),
    ],
)
def test_a_value_that_is_not_a_number_says_what_the_option_accepts(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    """Python's own "invalid literal for int()" names neither the option nor what it takes."""
    with pytest.raises(ConfigError) as error:
        load_settings(argv, env)
    assert str(error.value) == message


def test_provider_auto_follows_the_api_key_and_the_key_stays_out_of_repr() -> None:
    assert resolved_provider(load_settings([], {})) == "demo"
    settings = load_settings([], {"ANTHROPIC_API_KEY": "sk-ant-secret"})
    assert resolved_provider(settings) == "anthropic"
    assert "sk-ant-secret" not in repr(settings)
    assert resolved_provider(load_settings(["--provider", "demo"],
                                           {"ANTHROPIC_API_KEY": "k"})) == "demo"


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_safety_options_defaults_and_parsing() -> None:
    """The safety options are off or lenient by default, so a local run needs none of them:
    a per-client limit only beyond loopback (None: the default), no token, CORS off, a grace
    long enough for a short reply."""
    defaults = load_settings([], {})
    assert defaults.max_streams_per_client is None
    assert defaults.access_token is None
    assert defaults.cors_origins == ()
    assert defaults.shutdown_grace == 10
    token = "a-long-enough-token-1234"
    settings = load_settings(
        ["--max-streams-per-client", "3", "--cors-origins",
         "https://a.example, http://localhost:5173/"],
        {"SSESERVER_ACCESS_TOKEN": token, "SSESERVER_SHUTDOWN_GRACE": "2.5"},
    )
    assert settings.max_streams_per_client == 3
    assert settings.access_token == token
    assert settings.cors_origins == ("https://a.example", "http://localhost:5173")
    assert settings.shutdown_grace == 2.5
    assert token not in repr(settings)
    assert load_settings([], {"SSESERVER_ACCESS_TOKEN": ""}).access_token is None


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--access-token", "short"], "--access-token"),
        (["--access-token", "has a space in it, sixteen+"], "--access-token"),
        (["--cors-origins", "*"], "--cors-origins"),
        (["--cors-origins", "https://a.example/path"], "--cors-origins"),
        (["--max-streams-per-client", "-1"], "--max-streams-per-client"),
        (["--shutdown-grace", "nan"], "--shutdown-grace"),
    ],
)
def test_bad_safety_options_name_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as error:
        load_settings(argv, {})
    if named == "--access-token":
        assert argv[1] not in str(error.value)  # a token is not echoed, even a bad one


def test_claude_feature_options_from_flags_and_environment() -> None:
    settings = load_settings(
        ["--max-thinking-tokens", "0", "--prompt-cache", "1h"], {"SSESERVER_WEB_SEARCH": "3"}
    )
    assert (settings.max_thinking_tokens, settings.web_search, settings.prompt_cache) == (
        0, 3, "1h"
    )
    env = {"SSESERVER_MAX_THINKING_TOKENS": "1024", "SSESERVER_PROMPT_CACHE": "off"}
    settings = load_settings([], env)
    assert (settings.max_thinking_tokens, settings.prompt_cache) == (1024, "off")


@pytest.mark.parametrize("via", ["flag", "variable"])
def test_secrets_come_from_files_without_their_trailing_newline(
    tmp_path: Path, via: str
) -> None:
    """A file (or the variable) keeps a secret out of the command line, which any user of
    the machine can read with `ps`."""
    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789abcdef\n")
    redis_file = tmp_path / "redis"
    redis_file.write_text("redis://:s3cret@127.0.0.1:6379/0\n")
    if via == "flag":
        settings = load_settings(["--access-token-file", str(token_file),
                                  "--redis-url-file", str(redis_file)], {})
    else:
        settings = load_settings([], {"SSESERVER_ACCESS_TOKEN_FILE": str(token_file),
                                      "SSESERVER_REDIS_URL_FILE": str(redis_file)})
    assert settings.access_token == "file-token-0123456789abcdef"
    assert settings.redis_url == "redis://:s3cret@127.0.0.1:6379/0"
    assert secrets_on_command_line(["--access-token-file", str(token_file)]) == []


def test_a_bad_secret_file_is_named_and_its_content_never_shown(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tooshort")
    with pytest.raises(ConfigError) as error:
        load_settings(["--access-token-file", str(short)], {})
    assert str(error.value) == (f"--access-token-file={str(short)!r}: must be at least 16 "
                                "printable ASCII characters without spaces")
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError) as error:
        load_settings([], {"SSESERVER_ACCESS_TOKEN_FILE": str(missing)})
    assert str(error.value) == (
        f"SSESERVER_ACCESS_TOKEN_FILE={str(missing)!r}: cannot read it: No such file or "
        "directory")
    with pytest.raises(ConfigError) as error:
        load_settings(["--redis-url", "redis://:pw@h/0", "--redis-url-file", str(short)], {})
    assert str(error.value) == "give --redis-url or --redis-url-file, not both"
    with pytest.raises(ConfigError) as error:
        load_settings(["--redis-url", "http://:hunter2@h"], {})
    assert "hunter2" not in str(error.value)


def test_secrets_on_the_command_line_are_found_in_either_form() -> None:
    argv = ["--port", "0", "--access-token=abc", "--redis-url", "redis://h"]
    assert secrets_on_command_line(argv) == ["--access-token", "--redis-url"]
    assert secrets_on_command_line(["--access-token-file", "/run/token"]) == []


def test_attachment_options_defaults_and_parsing() -> None:
    """A file of up to 32 MiB decoded (the API's request bound), a body with files of up to
    64 MiB (a file's base64 is a third larger), documents cited (docs/protocol.md,
    "Attachments")."""
    defaults = load_settings([], {})
    assert (defaults.max_attachment_bytes, defaults.max_upload_bytes) == (32 * 2**20, 64 * 2**20)
    assert (defaults.max_body_bytes, defaults.document_citations) == (2**20, True)
    settings = load_settings(["--max-attachment-bytes", "1000", "--document-citations", "off"],
                             {"SSESERVER_MAX_UPLOAD_BYTES": "2000000"})
    assert (settings.max_attachment_bytes, settings.max_upload_bytes) == (1000, 2_000_000)
    assert settings.document_citations is False


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--max-attachment-bytes", "0"], "--max-attachment-bytes='0': must be at least 1"),
        (["--max-upload-bytes", "1.5"], "--max-upload-bytes='1.5'"),
        (["--document-citations", "yes"], "--document-citations='yes': must be on or off"),
        (["--max-upload-bytes", "1000", "--max-body-bytes", "2000"],
         "--max-upload-bytes 1000 is less than --max-body-bytes 2000"),
    ],
)
def test_bad_attachment_options_name_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(argv, {})


def test_user_options_from_flags_and_environment(tmp_path: Path) -> None:
    """Users' options (docs/operations.md, "Users"): the secret is read from its file
    without the final line end, and never shows in a repr."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 40 + b"\n")
    settings = load_settings(
        ["--jwt-secret-file", str(secret), "--jwt-audience", "api", "--budget-tokens", "500",
         "--budget-window", "12h"],
        {"SSESERVER_JWT_ISSUER": "https://id.example", "SSESERVER_JWT_USER_CLAIM": "email",
         "SSESERVER_JWT_JWKS_URL": "https://id.example/.well-known/jwks.json"},
    )
    assert settings.jwt_secret_file == b"x" * 40
    assert settings.users
    assert (settings.jwt_audience, settings.jwt_issuer, settings.jwt_user_claim) == (
        "api", "https://id.example", "email")
    assert settings.jwt_jwks_url == "https://id.example/.well-known/jwks.json"
    assert (settings.budget_tokens, settings.budget_window) == (500, 43200)
    assert "xxxx" not in repr(settings)
    defaults = load_settings([], {})
    assert not defaults.users
    assert (defaults.jwt_user_claim, defaults.budget_tokens, defaults.budget_window) == (
        "sub", 0, 86400)
    assert defaults.jwks_min_refresh == 30
    assert load_settings(["--budget-window", "90"], {}).budget_window == 90


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jwt-jwks-url", "ftp://id.example/jwks"], "--jwt-jwks-url='ftp://id.example/jwks'"),
        (["--jwt-secret-file", "/nonexistent/secret"], "--jwt-secret-file=(hidden): cannot be"),
        (["--jwt-user-claim", " "], "--jwt-user-claim"),
        (["--budget-tokens", "-1"], "--budget-tokens='-1'"),
        (["--budget-window", "1w"], "--budget-window='1w': must be a duration"),
        (["--budget-window", "30s"], "--budget-window='30s': must be from 1 minute"),
        (["--budget-tokens", "100"], "--budget-tokens counts per user"),
        (["--jwt-jwks-url", "https://id.example/jwks", "--access-token", "t" * 20],
         "--access-token is the single-user mode"),
    ],
)
def test_bad_user_options_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(argv, {})
    assert message in str(caught.value)


def test_a_short_secret_is_refused_and_not_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"short-secret\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(["--jwt-secret-file", str(secret)], {})
    assert "must hold at least 32 bytes" in str(caught.value)
    assert "short-secret" not in str(caught.value)


@pytest.mark.parametrize("value", ["-1", "100.5", "nan", "inf", "2ms", ""])
def test_a_redis_batch_interval_out_of_range_names_the_flag(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(["--redis-batch-ms", value], {})
    assert str(caught.value).startswith(f"--redis-batch-ms={value!r}: must be")


def test_the_redis_batch_interval_comes_from_the_flag_or_the_variable() -> None:
    assert load_settings([], {}).redis_batch_ms == 2
    assert load_settings(["--redis-batch-ms", "0"], {}).redis_batch_ms == 0
    assert load_settings([], {"SSESERVER_REDIS_BATCH_MS": "10"}).redis_batch_ms == 10
