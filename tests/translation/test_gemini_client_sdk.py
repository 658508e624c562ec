"""google-genai SDK → gateway (/v1beta/models/…) → OpenAI, Anthropic, Responses and Gemini upstreams."""

from __future__ import annotations

from gemini_support import genai_client
from google.genai import types
from translation_support import MODEL, Turn, one_model


async def test_gemini_client_text_over_openai_upstream(gateway, openai_fake):
    openai_fake.push_turn(Turn(content="Bonjour from OpenAI"))
    client = genai_client(await gateway(one_model("openai", openai_fake)))

    answer = await client.aio.models.generate_content(
        model=MODEL,
        contents="hello there",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2),
    )

    assert answer.text == "Bonjour from OpenAI"
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    usage = answer.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (11, 7)
    sent = openai_fake.requests[0].body
    assert sent["model"] == "up-model"
    assert sent["temperature"] == 0.2
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
