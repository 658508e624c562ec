"""Edge case: an Anthropic client (Claude Code, say) behind an OpenAI-compatible upstream must see
a tool call's arguments as they are generated, not as one blob once the upstream has finished.
The OpenAI stream decoder ends tool calls only at finish_reason, so the upstream here pauses
right before that chunk while the test watches what has already reached the client.
"""

from __future__ import annotations

import asyncio
import json

from translation_support import MODEL, WEATHER_TOOL_ANTHROPIC, Turn, anthropic_client, one_model

ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'  # the fake sends it in two pieces
WAIT_S = 2.0  # below the provider timeout (5 s), which would end the paused upstream


async def test_single_tool_call_arguments_stream_live_to_anthropic_client(gateway, openai_fake):
    release = asyncio.Event()
    openai_fake.push_turn(
        Turn(
            tool_calls=[("get_weather", ARGUMENTS)],
            finish_reason="tool_calls",
            finish_after=release,
        )
    )
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    pieces: list[str] = []
    try:
        async with client.messages.stream(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL_ANTHROPIC],
        ) as stream:
            events = aiter(stream)
            while len(pieces) < 2:  # both pieces, while the upstream still holds finish_reason
                try:
                    event = await asyncio.wait_for(anext(events), WAIT_S)
                except TimeoutError:
                    break
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    pieces.append(event.delta.partial_json)
            assert pieces == [ARGUMENTS[: len(ARGUMENTS) // 2], ARGUMENTS[len(ARGUMENTS) // 2 :]], (
                f"before the upstream finished the client had only {pieces!r}"
            )
            release.set()
            async for event in events:
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    pieces.append(event.delta.partial_json)
            message = await stream.get_final_message()
    finally:
        release.set()  # a failing run must not leave the fake waiting

    assert "".join(pieces) == ARGUMENTS
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", "call_0", "get_weather", json.loads(ARGUMENTS))
    ]
    assert message.stop_reason == "tool_use"
