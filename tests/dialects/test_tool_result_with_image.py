"""An Anthropic tool result holding an image, translated for an OpenAI upstream (which has
no images in tool messages: the image follows in a user message)."""

from __future__ import annotations

from translation_support import (
    MODEL,
    NOW_TOOL_ANTHROPIC,
    PNG_B64,
    WEATHER_TOOL_ANTHROPIC,
    anthropic_client,
    one_model,
    tool_history,
)


async def test_tool_result_with_image_over_openai_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    results = [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_a",
            "content": [{"type": "text", "text": "map:"}, image],
        },
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "12:00"},
    ]

    await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=tool_history(*results),
        tools=[WEATHER_TOOL_ANTHROPIC, NOW_TOOL_ANTHROPIC],
    )

    sent = openai_fake.requests[0].body["messages"]
    assert [m["role"] for m in sent[1:]] == ["assistant", "tool", "tool", "user"]
    assert "map:" in str(sent[2]["content"])
    assert sent[3]["content"] == "12:00"
    (url,) = [p["image_url"]["url"] for p in sent[4]["content"] if p["type"] == "image_url"]
    assert url == f"data:image/png;base64,{PNG_B64}"
