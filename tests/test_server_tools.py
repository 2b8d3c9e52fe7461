"""A server tool's result as a reader gets it (providers/server_tools.py): the edges the
end-to-end tests do not reach."""

from __future__ import annotations

from typing import Any

import pytest

from sseserver.providers.server_tools import MAX_RESULT_TEXT, Call, files_of, tool_result
from tests.support.fake_anthropic import (
    BashResult,
    CodeExecutionResult,
    McpToolResult,
    TextEditorResult,
    ToolSearchResult,
    WebFetchResult,
    WebSearchResult,
)


@pytest.mark.parametrize(("block", "name"), [
    (WebSearchResult("srvtoolu_1", error_code="too_many_requests"), "web_search"),
    (WebFetchResult("srvtoolu_1", "https://x.test", error_code="unavailable"), "web_fetch"),
    (CodeExecutionResult("srvtoolu_1", error_code="unavailable"), "code_execution"),
    (BashResult("srvtoolu_1", error_code="unavailable"), "bash_code_execution"),
    (TextEditorResult("srvtoolu_1", error_code="unavailable"), "text_editor_code_execution"),
    (ToolSearchResult("srvtoolu_1", error_code="unavailable"), "tool_search"),
])
def test_a_result_whose_call_was_not_seen_is_named_by_its_type(block: Any, name: str) -> None:
    summary = tool_result(block.content(), None)
    assert summary["name"] == name
    assert summary["error"]["code"] == block.error_code


def test_a_call_without_command_or_path_gives_nulls() -> None:
    summary = tool_result(TextEditorResult("srvtoolu_1", {
        "type": "text_editor_code_execution_create_result", "is_file_update": True,
    }).content(), Call("text_editor_code_execution"))
    assert summary == {"tool_use_id": "srvtoolu_1", "name": "text_editor_code_execution",
                       "command": None, "path": None,
                       "result": {"type": "create", "is_file_update": True}}


@pytest.mark.parametrize(("text", "kept", "truncated"), [
    ("a" * MAX_RESULT_TEXT, "a" * MAX_RESULT_TEXT, False),
    ("a" * (MAX_RESULT_TEXT + 1), "a" * MAX_RESULT_TEXT, True),
    # A four-byte character across the bound is dropped whole, never split.
    ("a" * (MAX_RESULT_TEXT - 2) + "😀", "a" * (MAX_RESULT_TEXT - 2), True),
])
def test_an_mcp_answer_is_cut_at_16_kib_between_characters(
    text: str, kept: str, truncated: bool
) -> None:
    summary = tool_result(McpToolResult("mcptoolu_1", text).content(),
                          Call("echo", {}, "docs"))
    assert summary["content"] == kept
    assert summary.get("truncated", False) is truncated


def test_an_mcp_answer_keeps_only_its_text_blocks() -> None:
    block = {"type": "mcp_tool_result", "tool_use_id": "mcptoolu_1", "is_error": False,
             "content": [{"type": "text", "text": "one"}, {"type": "image", "source": {}},
                         {"type": "text", "text": "two"}]}
    assert tool_result(block, Call("echo", {}, "docs"))["content"] == "one\ntwo"


def test_only_a_code_run_s_result_lists_files_to_name() -> None:
    run = tool_result(CodeExecutionResult("srvtoolu_1", file_ids=("file_1",)).content(), None)
    assert files_of(run) == [{"file_id": "file_1", "name": None}]
    assert files_of(tool_result(CodeExecutionResult("srvtoolu_1").content(), None)) == []
    assert files_of({"files": "not a list"}) == []
    assert files_of(None) == []
