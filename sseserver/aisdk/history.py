"""The body the AI SDK's chat transport posts, as a GenerationRequest: its UI messages
become Claude's messages, then go through the very validation of POST /api/streams
(validation.py), limits and statuses included (docs/protocol.md, "The AI SDK's chat route").

The body (`HttpChatTransport.sendMessages` in the `ai` package): `id` (the chat), `messages`
(the whole history as UI messages), `trigger`, `messageId`, and whatever the app adds with
the transport's `body` option, which here may be our own request options (`model`, ...).

What becomes of a UI message's parts:
- `text` is what Claude reads; a message's text parts are joined as they are.
- Parts our own replies hold or that are the app's own are left out: `step-start`,
  `reasoning`, `reasoning-file`, `source-url`, `source-document`, `custom`, tool parts
  (`tool-*`, `dynamic-tool`) and data parts (`data-*`, which the AI SDK's own
  `convertToModelMessages` leaves out too).
- `file` parts of a user message become image and document blocks before its text
  (files.py); in an assistant message they are refused (400).
- `steering-message` is refused (400): it carries what the user sent, which this server
  cannot pass on, and dropping it would change the question silently.
- Any other type is refused (400).

An assistant message with no text (a reply stopped before its first word) is left out, and
messages of one role in a row are joined with a blank line, as Claude's API itself joins
consecutive turns: so a chat where a reply was stopped early, or refused (429, 503), and
the user wrote again stays valid. What remains must start and end with a user message.
"""

from __future__ import annotations

from typing import Any, Final, TypeGuard

from ..config import Settings
from ..errors import BadRequest, TooLarge
from ..providers import GenerationRequest
from ..providers.base import Block
from ..validation import json_body, request_from_data
from .files import file_block

CHAT_KEYS: Final = frozenset({"id", "messages", "trigger", "messageId"})
TRIGGERS: Final = frozenset({"submit-message", "regenerate-message"})
CHAT_ID_MAX: Final = 128
_CHAT_ID_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)
IGNORED_PARTS: Final = frozenset({
    "step-start", "reasoning", "reasoning-file", "source-url", "source-document", "custom",
    "dynamic-tool",
})
REFUSED_PARTS: Final = {
    "steering-message": "steering messages are not supported by this server",
}


def is_chat_id(value: object) -> TypeGuard[str]:
    """1 to 128 of the characters a URL path segment carries as they are; not `.` or `..`,
    which the transport itself refuses."""
    return (isinstance(value, str) and 0 < len(value) <= CHAT_ID_MAX
            and value not in (".", "..") and set(value) <= _CHAT_ID_CHARS)


def chat_request(body: bytes, settings: Settings) -> tuple[str, GenerationRequest]:
    """The chat id and what to generate, or BadRequest / TooLarge."""
    data: Any = json_body(body)
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    chat_id = data.get("id")
    if not is_chat_id(chat_id):
        raise BadRequest(f"id must be the chat's id: 1 to {CHAT_ID_MAX} characters of "
                         "A-Z a-z 0-9 - _ . ~ (not . or ..).")
    trigger = data.get("trigger", "submit-message")
    if not isinstance(trigger, str) or trigger not in TRIGGERS:
        raise BadRequest("trigger must be 'submit-message' or 'regenerate-message'.")
    if not isinstance(data.get("messageId", ""), str | None):
        raise BadRequest("messageId must be a string.")
    options = {key: value for key, value in data.items() if key not in CHAT_KEYS}
    turns = conversation(data.get("messages"), settings)
    return chat_id, request_from_data({"messages": turns, **options}, settings)


def chat_generation(chat: tuple[str, GenerationRequest]) -> GenerationRequest:
    """What `chat_request`'s answer asks to generate."""
    return chat[1]


def conversation(messages: object, settings: Settings) -> list[dict[str, Any]]:
    """UI messages as alternating {role, content} turns, starting and ending with the user."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of UI messages.")
    turns: list[dict[str, Any]] = []
    files: dict[int, list[Block]] = {}  # a turn's files, by its index
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        sent: list[Block] = []
        role, text = _message(message, where, sent)
        if not text.strip():
            if sent:
                text = ""  # a message of files alone
            elif role == "assistant":
                continue  # stopped before its first word
            else:
                raise BadRequest(f"{where} has no text.")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = "\n\n".join(t for t in (turns[-1]["content"], text) if t)
        else:
            turns.append({"role": role, "content": text})
        if sent:
            files.setdefault(len(turns) - 1, []).extend(sent)
        if len(turns[-1]["content"]) > settings.max_message_chars:
            raise TooLarge(f"{where} is longer than {settings.max_message_chars} characters"
                           " (with the messages of its role just before it, if any).")
    if not turns or turns[0]["role"] != "user":
        raise BadRequest("The conversation must start with a user message.")
    if turns[-1]["role"] != "user":
        raise BadRequest("The last message must be the user's: the reply answers it.")
    for index, blocks in files.items():
        turns[index]["content"] = with_files(blocks, turns[index]["content"])
    return turns


def with_files(files: list[Block], text: str) -> list[Block]:
    """A user turn's content: its files, then its text (when it has some), as the API
    advises."""
    return [*files, {"type": "text", "text": text}] if text.strip() else files


def _message(message: object, where: str, files: list[Block]) -> tuple[str, str]:
    """A UI message's role and text; its file parts are appended to `files`."""
    if not isinstance(message, dict):
        raise BadRequest(f"{where} must be a UI message: an object with id, role and parts.")
    if not isinstance(message.get("id"), str):
        raise BadRequest(f"{where}.id must be a string.")
    role = message.get("role")
    if role == "system":
        raise BadRequest(f"{where}: system messages are not supported; send the system "
                         "field in the body instead.")
    if role not in ("user", "assistant"):
        raise BadRequest(f"{where}.role must be 'user' or 'assistant'.")
    parts = message.get("parts")
    if not isinstance(parts, list):
        raise BadRequest(f"{where}.parts must be a list.")
    texts: list[str] = []
    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            raise BadRequest(f"{at} must be an object with a string type.")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{at}.text must be a string.")
            texts.append(text)
        elif kind == "file":
            if role != "user":
                raise BadRequest(f"{at}: file parts are supported in user messages only.")
            files.append(file_block(part, at))
        elif kind in REFUSED_PARTS:
            raise BadRequest(f"{at}: {REFUSED_PARTS[kind]}; send text parts only.")
        elif kind not in IGNORED_PARTS and not kind.startswith(("tool-", "data-")):
            raise BadRequest(f"{at}.type {kind[:50]!r} is not a UI message part type.")
    return role, "".join(texts)
