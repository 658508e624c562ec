"""Empty and is_error Anthropic tool results, translated for an OpenAI upstream."""

from __future__ import annotations

from translation_support import (
    MODEL,
    NOW_TOOL_ANTHROPIC,
    WEATHER_TOOL_ANTHROPIC,
    anthropic_client,
    one_model,
    tool_history,
)


async def test_empty_and_error_tool_results_over_openai_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": [], "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_b"},
    ]

    await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=tool_history(*results, text="Let me check."),
        tools=[WEATHER_TOOL_ANTHROPIC, NOW_TOOL_ANTHROPIC],
    )

    sent = openai_fake.requests[0].body["messages"]
    assistant = sent[1]
    assert assistant["content"] == "Let me check."
    assert [c["id"] for c in assistant["tool_calls"]] == ["toolu_a", "toolu_b"]
    assert assistant["tool_calls"][1]["function"]["arguments"] == "{}"
    tools = sent[2:]
    assert [(m["role"], m["tool_call_id"]) for m in tools] == [
        ("tool", "toolu_a"),
        ("tool", "toolu_b"),
    ]
    assert tools[0]["content"].startswith("Error")  # the dialect has no is_error flag
    assert tools[1]["content"] == ""
