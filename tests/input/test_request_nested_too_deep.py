"""Issue 10 finding: a request nested deeper than orjson can write back is a 400, relayed or
translated (it was a 500)."""

from __future__ import annotations

from typing import Any

from gateway_support import MODELS
from regression_support import chat_body, post_checked


async def test_request_nested_deeper_than_orjson_writes_is_400(fuzz_gateway):
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    for model in (MODELS["openai_chat"], MODELS["anthropic"]):  # relayed, translated
        body = chat_body(model=model)
        body["tools"][0]["function"]["parameters"]["properties"]["city"]["enum"] = deep
        status, answer, _ = await post_checked(fuzz_gateway, "/v1/chat/completions", body)
        assert status == 400, model
        assert "deeper than" in answer["error"]["message"]
