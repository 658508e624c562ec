"""Issue 10 finding: a chat tool whose parameters are a JSON string, not an object, is a
400 naming the field (it was a 500 when translated for Anthropic)."""

from __future__ import annotations

from regression_support import chat_body, post_checked


async def test_chat_to_anthropic_with_string_tool_parameters_is_400(fuzz_gateway):
    body = chat_body()
    body["tools"][0]["function"]["parameters"] = '{"type": "object"}'
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400
    assert answer["error"]["param"] == "tools[0].function.parameters"
    assert "must be an object" in answer["error"]["message"]
