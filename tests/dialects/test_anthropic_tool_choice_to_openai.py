"""Anthropic tool_choice (any/auto/tool, disable_parallel_tool_use) for an OpenAI upstream."""

from __future__ import annotations

import pytest
from translation_support import HELLO, MODEL, WEATHER_TOOL_ANTHROPIC, anthropic_client, one_model


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "auto"}, "auto"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_anthropic_tool_choice_over_openai_upstream(choice, expected, gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=HELLO,
        tools=[WEATHER_TOOL_ANTHROPIC],
        tool_choice=choice,
    )

    assert openai_fake.requests[0].body["tool_choice"] == expected


async def test_disable_parallel_tool_use_over_openai_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=HELLO,
        tools=[WEATHER_TOOL_ANTHROPIC],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )

    assert openai_fake.requests[0].body["parallel_tool_calls"] is False
