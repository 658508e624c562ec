"""An empty tool result reaches Anthropic without an empty text block (which it rejects)."""

from __future__ import annotations

from dialect_helpers import translate_request


def test_empty_tool_result_for_anthropic_has_no_empty_text():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": ""},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "c"}]
