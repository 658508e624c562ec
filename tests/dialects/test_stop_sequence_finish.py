"""Anthropic's stop_sequence finish is OpenAI's stop; stop strings reach Anthropic."""

from __future__ import annotations

from translation_support import CLIENT_TOKEN, HELLO, MODEL, one_model


async def test_anthropic_stop_sequence_is_openai_stop(gateway, anthropic_fake):
    anthropic_fake.push_text("one two", stop_reason="stop_sequence")
    gw = await gateway(one_model("anthropic", anthropic_fake))

    completion = await gw.openai(CLIENT_TOKEN).chat.completions.create(
        model=MODEL, messages=HELLO, stop=["three"]
    )

    assert completion.choices[0].finish_reason == "stop"
    assert anthropic_fake.requests[0].json["stop_sequences"] == ["three"]
