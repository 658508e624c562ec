"""Issue 10 finding: an Anthropic tool result whose content is a number is a 400 in Anthropic's
shape, on /v1/messages and on count_tokens (it was an OpenAI-shaped 500)."""

from __future__ import annotations

from gateway_support import MODELS
from regression_support import messages_with_numeric_tool_result, post_checked


async def test_messages_with_numeric_tool_result_content_is_400_in_anthropic_shape(fuzz_gateway):
    body = messages_with_numeric_tool_result(MODELS["openai_chat"])
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/messages", body)
    assert status == 400
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert "messages[2].content[0].content" in answer["error"]["message"]


async def test_count_tokens_with_numeric_tool_result_content_is_400_in_anthropic_shape(
    fuzz_gateway,
):
    body = messages_with_numeric_tool_result(MODELS["openai_chat"])  # counted by an estimate
    del body["max_tokens"], body["stream"]
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/messages/count_tokens", body)
    assert status == 400
    assert "messages[2].content[0].content" in answer["error"]["message"]
