"""Gemini's SAFETY finish is OpenAI's content_filter and Anthropic's refusal."""

from __future__ import annotations

from translation_support import CLIENT_TOKEN, HELLO, MODEL, anthropic_client, one_model


async def test_gemini_safety_is_openai_content_filter_and_anthropic_refusal(gateway, gemini_fake):
    gemini_fake.push_text("", finish_reason="SAFETY")
    gemini_fake.push_text("", finish_reason="SAFETY")
    gw = await gateway(one_model("gemini", gemini_fake))

    completion = await gw.openai(CLIENT_TOKEN).chat.completions.create(model=MODEL, messages=HELLO)
    message = await anthropic_client(gw).messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert completion.choices[0].finish_reason == "content_filter"
    assert message.stop_reason == "refusal"
