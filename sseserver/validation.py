"""Turn untrusted query strings and JSON bodies into a GenerationRequest, or refuse with
the status docs/protocol.md names. Nothing is clamped silently: a bad value is an error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .attachments import Attachments
from .config import Settings
from .content import check_tool_answers, content_blocks
from .errors import BadRequest, TooLarge
from .ids import parse_event_id
from .option_values import MIN_THINKING_BUDGET
from .providers import ChatMessage, GenerationRequest
from .providers.base import Thinking
from .request_options import FIELDS, ServerOptions, server_options
from .tools.loop import offered_tools

_BODY_KEYS: Final = frozenset({"messages", "model", "system", "max_tokens", "thinking"}) | FIELDS
_MESSAGE_KEYS: Final = frozenset({"role", "content"})


def _within_limit(value: str, what: str, settings: Settings) -> str:
    if len(value) > settings.max_message_chars:
        raise TooLarge(f"{what} is longer than {settings.max_message_chars} characters.")
    return value


def _text(value: str, what: str, settings: Settings) -> str:
    if not _within_limit(value, what, settings).strip():
        raise BadRequest(f"{what} must not be empty.")
    return value


def _model(value: object, settings: Settings) -> str:
    if value is None:
        return settings.model
    if not isinstance(value, str) or value not in settings.allowed_models:
        allowed = ", ".join(settings.allowed_models)
        raise BadRequest(f"Unknown model {str(value)[:100]!r}; allowed: {allowed}.")
    return value


def _max_tokens(value: object, settings: Settings) -> int:
    if value is None:
        return settings.max_tokens
    if isinstance(value, bool) or not isinstance(value, int) or not (
        1 <= value <= settings.max_tokens
    ):
        raise BadRequest(f"max_tokens must be an integer from 1 to {settings.max_tokens}.")
    return value


def _system(value: object, settings: Settings) -> str | None:
    """The operator's system prompt (--system-prompt), then the request's own where the
    operator allows one (--client-system)."""
    operator = settings.system_prompt
    if value is None or value == "":
        return operator
    if not isinstance(value, str):
        raise BadRequest("system must be a string.")
    if not settings.client_system:
        raise BadRequest("This server sets the system prompt itself; leave system out.")
    _within_limit(value, "system", settings)
    return f"{operator}\n\n{value}" if operator else value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _thinking(value: object, max_tokens: int, settings: Settings) -> Thinking:
    """off, adaptive, or a budget the API accepts: at least 1024 and below max_tokens
    (refused here rather than by the API, or clamped)."""
    bound = settings.max_thinking_tokens
    if value is None:
        return "adaptive" if bound else "off"  # protocol.md, "Choices"
    if value == "off":
        return "off"
    if value != "adaptive" and not _is_int(value):
        raise BadRequest('thinking must be "off", "adaptive" or a budget of tokens.')
    if not bound:
        raise BadRequest('Thinking is turned off on this server; send thinking "off" or '
                          "leave it out.")
    if value == "adaptive":
        return "adaptive"
    assert isinstance(value, int)
    if not MIN_THINKING_BUDGET <= value <= bound:
        raise BadRequest(
            f"A thinking budget must be from {MIN_THINKING_BUDGET} to {bound} tokens."
        )
    if value >= max_tokens:
        raise BadRequest(
            f"A thinking budget must be less than max_tokens ({max_tokens}), which "
            "counts the thinking too: raise max_tokens or lower the budget."
        )
    return value


def request_from_query(query: Mapping[str, str], settings: Settings) -> GenerationRequest:
    """GET /api/sse?message=...&model=...&max_tokens=...&system=...&thinking=...
    &web_search=...&web_fetch=...&code_execution=...&tool_search=...&container=...
    &effort=...&output_schema=..."""
    message = query.get("message")
    if message is None:
        raise BadRequest("The message query parameter is required.")
    max_tokens = _max_tokens(_query_int(query.get("max_tokens")), settings)
    return _generation(
        (ChatMessage("user", _text(message, "message", settings)),),
        _model(query.get("model"), settings), max_tokens,
        _system(query.get("system"), settings),
        _thinking(_query_int(query.get("thinking")), max_tokens, settings),
        server_options(lambda name: _query_int(query.get(name)), settings), settings,
    )


def _generation(
    messages: tuple[ChatMessage, ...], model: str, max_tokens: int, system: str | None,
    thinking: Thinking, options: ServerOptions, settings: Settings,
) -> GenerationRequest:
    """The request's own choices, and what the operator sends on every request (its MCP
    servers, compaction)."""
    return GenerationRequest(
        messages=messages, model=model, max_tokens=max_tokens, system=system,
        thinking=thinking, web_search=options.web_search, web_fetch=options.web_fetch,
        code_execution=options.code_execution, tool_search=options.tool_search,
        container=options.container, output_config=options.output_config,
        mcp_servers=tuple(server.api_shape() for server in settings.mcp_servers),
        compaction=settings.compaction,
    )


def _query_int(raw: str | None) -> object:
    """Plain decimal digits become an int; anything else stays as is, to be refused."""
    if raw is not None and raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    return raw


def json_body(body: bytes) -> Any:
    """A request body parsed as JSON, or a 400 that says why."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The body must be JSON in UTF-8.") from None
    except RecursionError:  # arrays or objects nested deeper than the parser recurses
        raise BadRequest("The body's JSON is nested too deeply.") from None


def request_from_json(body: bytes, settings: Settings) -> GenerationRequest:
    """POST /api/streams: {"messages": [...], "model"?, "system"?, "max_tokens"?,
    "thinking"?, "web_search"?, "web_fetch"?, "code_execution"?, "tool_search"?,
    "container"?, "effort"?, "output_schema"?}"""
    return request_from_data(json_body(body), settings)


def request_from_data(data: Any, settings: Settings) -> GenerationRequest:
    """The parsed body of POST /api/streams; also what the AI SDK's chat route builds from
    its own body (aisdk/history.py), so both share every check."""
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    unknown = sorted(set(data) - _BODY_KEYS)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)[:200]}.")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list.")
    parsed: list[ChatMessage] = []
    files = Attachments(settings.max_attachment_bytes, settings.document_citations)
    offered = offered_tools(settings)
    tools = {spec.name for spec in offered}
    for index, item in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(item, dict) or set(item) != _MESSAGE_KEYS:
            raise BadRequest(f"{where} must be an object with exactly role and content.")
        role = item["role"]
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise BadRequest(
                f"{where}.role must be {expected!r}: roles alternate, starting with 'user'."
            )
        content = item["content"]
        if isinstance(content, list):
            parsed.append(ChatMessage(role, content_blocks(
                content, role, f"{where}.content", tools,
                lambda text, what: _within_limit(text, what, settings), files,
            )))
        elif isinstance(content, str):
            parsed.append(ChatMessage(role, _text(content, f"{where}.content", settings)))
        else:
            raise BadRequest(f"{where}.content must be a string or a list of content blocks.")
    check_tool_answers([(m.role, m.content) for m in parsed],
                       {spec.name for spec in offered if spec.needs_approval})
    max_tokens = _max_tokens(data.get("max_tokens"), settings)
    return _generation(
        tuple(parsed), _model(data.get("model"), settings), max_tokens,
        _system(data.get("system"), settings),
        _thinking(data.get("thinking"), max_tokens, settings),
        server_options(data.get, settings), settings,
    )


def resume_point(header: str | None, query: str | None) -> tuple[str, int] | None:
    """The (stream, next index) a reconnect asks for. The header wins over the
    `lastEventId` query parameter, which exists because EventSource cannot set headers."""
    value = header if header is not None else query
    if value is None or value == "":
        return None
    parsed = parse_event_id(value)
    if parsed is None:
        raise BadRequest("Last-Event-ID is not an event id of this server.")
    stream_id, index = parsed
    return stream_id, index + 1
