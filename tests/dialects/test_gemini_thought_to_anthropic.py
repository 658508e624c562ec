"""A Gemini thought streams to an Anthropic client as a thinking block with its signature."""

from __future__ import annotations

from translation_support import HELLO, MODEL, anthropic_client, one_model


async def test_gemini_thought_streams_as_anthropic_thinking_block(gateway, gemini_fake):
    gemini_fake.push_thinking("Considering the sky", "gthought-1", text="Blue.")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        message = await stream.get_final_message()

    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Considering the sky"
    assert message.content[0].signature == "gthought-1"
    assert message.content[1].text == "Blue."
