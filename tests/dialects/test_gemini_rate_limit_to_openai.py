"""A Gemini 429 reaches an OpenAI client as rate_limit_error with its retry-after."""

from __future__ import annotations

import openai
import pytest
from translation_support import CLIENT_TOKEN, HELLO, MODEL, one_model


async def test_openai_client_gets_rate_limit_error_from_gemini_429(gateway, gemini_fake):
    body = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    gemini_fake.push_error(429, body, headers={"retry-after": "3"})
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)

    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "3"
