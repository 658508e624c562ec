"""Edge case: an OpenAI-compatible upstream interleaves the argument fragments of parallel tool
calls (call 1 starts before call 0's arguments are complete). Anthropic content blocks cannot
interleave, so the gateway must still hand the Anthropic client every call whole, in order.
"""

from __future__ import annotations

from translation_support import (
    MODEL,
    NOW_TOOL_ANTHROPIC,
    WEATHER_TOOL_ANTHROPIC,
    Turn,
    anthropic_client,
    one_model,
)

CALLS = [
    ("get_weather", '{"city": "Paris", "unit": "celsius"}'),
    ("get_weather", '{"city": "Rome", "unit": "celsius"}'),
    ("now", ""),
]


async def test_interleaved_parallel_tool_call_fragments_reach_anthropic_client(
    gateway, openai_fake
):
    # The upstream sends the heads of all three calls, then every first piece, then the second.
    openai_fake.push_turn(
        Turn(
            content="Checking both.", tool_calls=CALLS, finish_reason="tool_calls", interleaved=True
        )
    )
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    partial_json: dict[int, str] = {}
    async with client.messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris and Rome, and the time?"}],
        tools=[WEATHER_TOOL_ANTHROPIC, NOW_TOOL_ANTHROPIC],
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial_json[event.index] = partial_json.get(event.index, "") + (
                    event.delta.partial_json
                )
        message = await stream.get_final_message()

    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use", "tool_use"]
    assert message.content[0].text == "Checking both."
    uses = message.content[1:]
    assert [(u.id, u.name, u.input) for u in uses] == [
        ("call_0", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ("call_1", "get_weather", {"city": "Rome", "unit": "celsius"}),
        ("call_2", "now", {}),
    ]
    # Not a byte of arguments lost or reordered: each block carries its call's text exactly.
    assert partial_json == {1: CALLS[0][1], 2: CALLS[1][1]}
    assert message.stop_reason == "tool_use"
