"""The body the AI SDK's chat transport posts, as a GenerationRequest: its UI messages
become Claude's messages, then go through the very validation of POST /api/streams
(validation.py), limits and statuses included (docs/protocol.md, "The AI SDK's chat route").

The body (`HttpChatTransport.sendMessages` in the `ai` package): `id` (the chat), `messages`
(the whole history as UI messages), `trigger`, `messageId`, and whatever the app adds with
the transport's `body` option, which here may be our own request options (`model`, ...).

What becomes of a UI message's parts:
- `text` is what Claude reads; a message's text parts are joined as they are.
- Tool parts (`tool-NAME`, `dynamic-tool`) of the operator's tools that have an outcome
  (`output-available`, `output-error`, `output-denied`) become the assistant's `tool_use`
  blocks and the next user message's `tool_result` blocks; `approval-responded` becomes a
  `tool_approval` block, which the server then acts on. A step (the parts after a
  `step-start`) with such calls is sent as the blocks the API returned: its reasoning parts
  that carry a signature (or redacted data) in their `providerMetadata.anthropic` become
  its thinking blocks, which the API needs back when a tool turn is continued. Calls with
  no outcome yet are left out, as a stopped reply's text is kept.
- A `data-compaction` part (a reply's compaction, chunks.py) sends its `block` back, exactly
  as the API gave it, as the first block of that assistant message: the API needs it to
  know what the summary replaced.
- Parts our own replies hold or that are the app's own are left out: `step-start`,
  `reasoning` (outside a tool step), `reasoning-file`, `source-url`, `source-document`,
  `custom`, the parts of Claude's server tools and MCP calls (their results cannot be
  sent back without what the client never gets: encrypted content, whole documents) and
  other data parts (`data-*`, which the AI SDK's own `convertToModelMessages` leaves out
  too).
- `file` parts of a user message become image and document blocks before its text
  (files.py); in an assistant message they are refused (400).
- `steering-message` is refused (400): it carries what the user sent, which this server
  cannot pass on, and dropping it would change the question silently.
- Any other type is refused (400).

An assistant message with nothing left (a reply stopped before its first word) is left out,
and messages of one role in a row are joined (texts with a blank line), as Claude's API
itself joins consecutive turns: so a chat where a reply was stopped early, or refused (429,
503), and the user wrote again stays valid. What remains must start and end with a user
message: a chat may end with an assistant message only when its tool calls were answered
(`useChat`'s `sendAutomaticallyWhen` after `addToolOutput` or an approval), and the reply
then continues that message.

A reply that ran code names its container in its message's metadata (`metadata.container`,
from the `finish` chunk); with code execution on, the request's container is the latest
one the history names that has not expired, unless the body names one itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard

from ..config import Settings
from ..errors import BadRequest, TooLarge
from ..providers import GenerationRequest
from ..providers.base import Block
from ..tools.definitions import SERVER_TOOL_NAMES
from ..tools.handlers import DENIED
from ..validation import json_body, request_from_data
from .containers import last_container
from .files import file_block

CHAT_KEYS: Final = frozenset({"id", "messages", "trigger", "messageId"})
TRIGGERS: Final = frozenset({"submit-message", "regenerate-message"})
CHAT_ID_MAX: Final = 128
_CHAT_ID_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)
IGNORED_PARTS: Final = frozenset({
    "step-start", "reasoning", "reasoning-file", "source-url", "source-document", "custom",
})
REFUSED_PARTS: Final = {
    "steering-message": "steering messages are not supported by this server",
}
# A tool part's states: with an outcome Claude reads, and on their way to one.
ANSWERED: Final = frozenset({"output-available", "output-error", "output-denied",
                             "approval-responded"})
PENDING: Final = frozenset({"input-streaming", "input-available", "approval-requested"})
Content = str | list[Block]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """What a chat request asks for."""

    chat_id: str
    generation: GenerationRequest
    # The id of the client's last assistant message when the reply continues it.
    continues: str | None


def is_chat_id(value: object) -> TypeGuard[str]:
    """1 to 128 of the characters a URL path segment carries as they are; not `.` or `..`,
    which the transport itself refuses."""
    return (isinstance(value, str) and 0 < len(value) <= CHAT_ID_MAX
            and value not in (".", "..") and set(value) <= _CHAT_ID_CHARS)


def chat_request(body: bytes, settings: Settings) -> ChatTurn:
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
    messages = data.get("messages")
    turns = conversation(messages, settings)
    assert isinstance(messages, list)  # conversation() checked it
    code_execution = options.get("code_execution")
    if "container" not in options and (code_execution == "on" or code_execution is True):
        container = last_container(messages, datetime.now(UTC))
        if container is not None:
            options["container"] = container
    last = messages[-1]
    continues = last["id"] if last["role"] == "assistant" else None
    return ChatTurn(chat_id, request_from_data({"messages": turns, **options}, settings),
                    continues)


def chat_generation(turn: ChatTurn) -> GenerationRequest:
    """What `chat_request`'s answer asks to generate (uploads.py parses a large body in a
    worker process with both)."""
    return turn.generation


def conversation(messages: object, settings: Settings) -> list[dict[str, Any]]:
    """UI messages as alternating {role, content} turns, starting and ending with the user;
    content is a string, or the API's blocks where tool calls were made."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of UI messages.")
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role, parts = _message(message, where)
        if role == "user":
            text, files = _user_content(parts, where)
            if not text.strip() and not files:
                raise BadRequest(f"{where} has no text.")
            made: list[tuple[str, Content]] = [("user", with_files(files, text) if files
                                                 else text)]
        else:
            made = _assistant_turns(parts, where)
        for made_role, content in made:
            _append(turns, made_role, content)
            joined = turns[-1]["content"]
            if isinstance(joined, str) and len(joined) > settings.max_message_chars:
                raise TooLarge(f"{where} is longer than {settings.max_message_chars} "
                               "characters (with the messages of its role just before it, "
                               "if any).")
    if not turns or turns[0]["role"] != "user":
        raise BadRequest("The conversation must start with a user message.")
    if turns[-1]["role"] != "user":
        raise BadRequest("The last message must be the user's: the reply answers it.")
    return turns


def _append(turns: list[dict[str, Any]], role: str, content: Content) -> None:
    """A turn after the others; one of the same role as the last is joined to it."""
    if not turns or turns[-1]["role"] != role:
        turns.append({"role": role, "content": content})
        return
    before = turns[-1]["content"]
    if isinstance(before, str) and isinstance(content, str):
        turns[-1]["content"] = before + "\n\n" + content
    else:
        turns[-1]["content"] = _blocks(before) + _blocks(content)


def _blocks(content: Content) -> list[Block]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _message(message: object, where: str) -> tuple[str, list[Any]]:
    """A UI message's role and parts."""
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
    for number, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest(f"{where}.parts[{number}] must be an object with a string type.")
    return role, parts


def _kind(part: dict[str, Any], at: str) -> str:
    """A part's type, once it is known to be one Claude reads or one left out."""
    kind: str = part["type"]
    if kind in REFUSED_PARTS:
        raise BadRequest(f"{at}: {REFUSED_PARTS[kind]}; send text parts only.")
    if kind not in IGNORED_PARTS and kind not in ("text", "file", "dynamic-tool") \
            and not kind.startswith(("tool-", "data-")):
        raise BadRequest(f"{at}.type {kind[:50]!r} is not a UI message part type.")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise BadRequest(f"{at}.text must be a string.")
    return kind


def _user_content(parts: list[Any], where: str) -> tuple[str, list[Block]]:
    """A user message's text, and its files as image and document blocks."""
    texts: list[str] = []
    files: list[Block] = []
    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        kind = _kind(part, at)
        if kind == "text":
            texts.append(part["text"])
        elif kind == "file":
            files.append(file_block(part, at))
    return "".join(texts), files


def with_files(files: list[Block], text: str) -> list[Block]:
    """A user turn's content: its files, then its text (when it has some), as the API
    advises."""
    return [*files, {"type": "text", "text": text}] if text.strip() else files


def _assistant_turns(parts: list[Any], where: str) -> list[tuple[str, Content]]:
    """An assistant message's turns: a step whose tool calls have outcomes becomes the
    assistant's blocks, in the order of its parts, and a user turn of their answers; a step
    without, its text (its reasoning left out, as everywhere but a tool step)."""
    turns: list[tuple[str, Content]] = []
    step: list[Block] = []  # thinking, text and tool_use blocks, in order
    answers: list[Block] = []
    compactions: list[Block] = []  # the blocks the message begins with

    def end_step() -> None:
        if answers:
            turns.append(("assistant", [b for b in step if b["type"] != "text" or b["text"]]))
            turns.append(("user", list(answers)))
        else:
            text = "".join(b["text"] for b in step if b["type"] == "text")
            if turns and isinstance(turns[-1][1], str):  # the message's texts join as they are
                turns[-1] = ("assistant", turns[-1][1] + text)
            elif text.strip():
                turns.append(("assistant", text))
        step.clear()
        answers.clear()

    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        kind = _kind(part, at)
        if kind == "file":
            raise BadRequest(f"{at}: file parts are supported in user messages only.")
        if kind == "step-start":
            end_step()
        elif kind == "text":
            if step and step[-1]["type"] == "text":  # a message's texts join as they are
                step[-1] = {"type": "text", "text": step[-1]["text"] + part["text"]}
            else:
                step.append({"type": "text", "text": part["text"]})
        elif kind == "reasoning":
            block = _thinking(part, at)
            if block is not None:
                step.append(block)
        elif kind == "dynamic-tool" or kind.startswith("tool-"):
            call = _tool_call(part, kind, at)
            if call is not None:
                step.append(call[0])
                answers.append(call[1])
        elif kind == "data-compaction":
            compactions.append(_compaction(part, at))
    end_step()
    if compactions:
        first = turns[0][1] if turns and turns[0][0] == "assistant" else None
        if first is None:
            turns.insert(0, ("assistant", compactions))
        else:
            turns[0] = ("assistant", compactions + _blocks(first))
    return turns


def _compaction(part: dict[str, Any], at: str) -> Block:
    """A data-compaction part's block, which goes back as the API gave it (its summary,
    encrypted content and signature), checked like every content block then."""
    data = part.get("data")
    block = data.get("block") if isinstance(data, dict) else None
    if not isinstance(block, dict) or block.get("type") != "compaction":
        raise BadRequest(f"{at}.data.block must be the compaction block the reply gave "
                         '(an object of type "compaction").')
    return block


def _thinking(part: dict[str, Any], at: str) -> Block | None:
    """A reasoning part as the API's thinking block: only one that carries what the API
    checks (its signature, or the redacted data)."""
    metadata = part.get("providerMetadata")
    anthropic = metadata.get("anthropic") if isinstance(metadata, dict) else None
    if not isinstance(anthropic, dict):
        return None
    if isinstance(anthropic.get("signature"), str):
        text = part.get("text", "")
        if not isinstance(text, str):
            raise BadRequest(f"{at}.text must be a string.")
        return {"type": "thinking", "thinking": text, "signature": anthropic["signature"]}
    if isinstance(anthropic.get("redactedData"), str):
        return {"type": "redacted_thinking", "data": anthropic["redactedData"]}
    return None


def _tool_call(part: dict[str, Any], kind: str, at: str) -> tuple[Block, Block] | None:
    """A tool part with an outcome: its `tool_use` block and the block that answers it
    (a `tool_result`, or the user's `tool_approval`); None for web search's own parts and
    for calls with no outcome yet."""
    name = part.get("toolName") if kind == "dynamic-tool" else kind[5:]
    if not isinstance(name, str):
        raise BadRequest(f"{at}.toolName must be a string.")
    state = part.get("state")
    if not isinstance(state, str) or state not in ANSWERED | PENDING:
        raise BadRequest(f"{at}.state must be a tool part's state.")
    if name in SERVER_TOOL_NAMES or state in PENDING or _is_mcp(part):
        return None
    call_id, tool_input = part.get("toolCallId"), part.get("input")
    if not isinstance(call_id, str):
        raise BadRequest(f"{at}.toolCallId must be a string.")
    if not isinstance(tool_input, dict):
        raise BadRequest(f"{at}.input must be an object (the call's input).")
    use: Block = {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}
    approval = part.get("approval")
    if state == "approval-responded":
        if not isinstance(approval, dict) or not isinstance(approval.get("approved"), bool):
            raise BadRequest(f"{at}.approval.approved must be true or false.")
        answer: Block = {"type": "tool_approval", "tool_use_id": call_id,
                         "approved": approval["approved"]}
        if isinstance(approval.get("reason"), str) and approval["reason"]:
            answer["reason"] = approval["reason"]
        return use, answer
    result: Block = {"type": "tool_result", "tool_use_id": call_id}
    if state == "output-available":
        output = part.get("output")
        result["content"] = output if _is_result_content(output) else json.dumps(output)
    elif state == "output-error":
        error = part.get("errorText")
        if not isinstance(error, str):
            raise BadRequest(f"{at}.errorText must be a string.")
        result |= {"content": error, "is_error": True}
    else:  # output-denied: as the server answers a denied call (docs/protocol.md, "Tools")
        reason = approval.get("reason") if isinstance(approval, dict) else None
        denied = DENIED + (f" Reason: {reason}" if isinstance(reason, str) and reason else "")
        result |= {"content": denied, "is_error": True}
    return use, result


def _is_mcp(part: dict[str, Any]) -> bool:
    """An MCP call's part: the metadata chunks.py gives its call (as @ai-sdk/anthropic)."""
    metadata = part.get("callProviderMetadata")
    anthropic = metadata.get("anthropic") if isinstance(metadata, dict) else None
    return isinstance(anthropic, dict) and anthropic.get("type") == "mcp-tool-use"


def _is_result_content(output: object) -> bool:
    """A string, or the text and image blocks a server-run tool returns: sent as they are.
    Anything else (a client tool's object) is sent as its JSON text."""
    return isinstance(output, str) or (
        isinstance(output, list) and bool(output) and all(
            isinstance(b, dict) and b.get("type") in ("text", "image") for b in output))
