"""Issue 10 finding: a chat tool_choice whose function is a number is a 400 naming the field
(it was a 500 when translated for Anthropic)."""

from __future__ import annotations

from regression_support import chat_body, post_checked


async def test_chat_to_anthropic_with_numeric_tool_choice_function_is_400(fuzz_gateway):
    body = chat_body(tool_choice={"type": "function", "function": 7})
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400
    assert answer["error"]["param"] == "tool_choice.function"
