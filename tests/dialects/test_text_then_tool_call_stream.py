"""Anthropic text followed by a tool call, streamed to an OpenAI client as one message."""

from __future__ import annotations

from translation_support import CLIENT_TOKEN, HELLO, MODEL, WEATHER_TOOL_OPENAI, one_model


async def test_anthropic_text_then_tool_call_over_stream_to_openai_client(gateway, anthropic_fake):
    anthropic_fake.push_tool_calls([("get_weather", {"city": "Paris"})], text="Checking now.")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    async with client.chat.completions.stream(
        model=MODEL, messages=HELLO, tools=[WEATHER_TOOL_OPENAI]
    ) as stream:
        completion = await stream.get_final_completion()

    message = completion.choices[0].message
    assert message.content == "Checking now."
    assert [(c.id, c.function.name) for c in message.tool_calls] == [("toolu_00", "get_weather")]
    assert completion.choices[0].finish_reason == "tool_calls"
