"""More protocol edge cases through the gateway: tool results, tool choice, usage, truncation."""

from __future__ import annotations

import anthropic
import openai
import pytest
from fakes.openai_upstream import BreakStream
from translation_support import (
    CLIENT_TOKEN,
    MODEL,
    NOW_TOOL_ANTHROPIC,
    PNG_B64,
    WEATHER_TOOL_ANTHROPIC,
    WEATHER_TOOL_OPENAI,
    Turn,
    anthropic_client,
    one_model,
)

HELLO = [{"role": "user", "content": "hello there"}]


def _history(*results: dict, text: str | None = None) -> list[dict]:
    """A turn that called get_weather (id toolu_a) and now, then the user's tool results."""
    calls = [
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
    ]
    assistant = ([{"type": "text", "text": text}] if text else []) + calls
    return [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": list(results)},
    ]


async def test_empty_and_error_tool_results_over_openai_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": [], "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_b"},
    ]

    await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=_history(*results, text="Let me check."),
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
        messages=_history(*results),
        tools=[WEATHER_TOOL_ANTHROPIC, NOW_TOOL_ANTHROPIC],
    )

    sent = openai_fake.requests[0].body["messages"]
    assert [m["role"] for m in sent[1:]] == ["assistant", "tool", "tool", "user"]
    assert "map:" in str(sent[2]["content"])
    assert sent[3]["content"] == "12:00"
    (url,) = [p["image_url"]["url"] for p in sent[4]["content"] if p["type"] == "image_url"]
    assert url == f"data:image/png;base64,{PNG_B64}"


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


async def test_anthropic_stream_usage_from_openai_upstream(gateway, openai_fake):
    usage = {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
    openai_fake.push_turn(Turn(content="counted answer", usage=usage))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        message = await stream.get_final_message()

    assert (message.usage.input_tokens, message.usage.output_tokens) == (123, 45)
    # The gateway asks for the usage chunk it needs; the client cannot ask in its dialect.
    assert openai_fake.requests[0].body["stream_options"] == {"include_usage": True}


async def test_silent_truncation_of_openai_stream_is_anthropic_error_event(gateway, openai_fake):
    openai_fake.queue(BreakStream(after=3, clean_eof=True))  # no finish chunk, no [DONE]
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
            await stream.get_final_message()

    assert caught.value.body["error"]["type"] == "api_error"


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


async def test_gemini_safety_is_openai_content_filter_and_anthropic_refusal(gateway, gemini_fake):
    gemini_fake.push_text("", finish_reason="SAFETY")
    gemini_fake.push_text("", finish_reason="SAFETY")
    gw = await gateway(one_model("gemini", gemini_fake))

    completion = await gw.openai(CLIENT_TOKEN).chat.completions.create(model=MODEL, messages=HELLO)
    message = await anthropic_client(gw).messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert completion.choices[0].finish_reason == "content_filter"
    assert message.stop_reason == "refusal"


async def test_anthropic_stop_sequence_is_openai_stop(gateway, anthropic_fake):
    anthropic_fake.push_text("one two", stop_reason="stop_sequence")
    gw = await gateway(one_model("anthropic", anthropic_fake))

    completion = await gw.openai(CLIENT_TOKEN).chat.completions.create(
        model=MODEL, messages=HELLO, stop=["three"]
    )

    assert completion.choices[0].finish_reason == "stop"
    assert anthropic_fake.requests[0].json["stop_sequences"] == ["three"]


async def test_openai_client_gets_rate_limit_error_from_gemini_429(gateway, gemini_fake):
    body = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    gemini_fake.push_error(429, body, headers={"retry-after": "3"})
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)

    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "3"


async def test_gemini_thought_streams_as_anthropic_thinking_block(gateway, gemini_fake):
    gemini_fake.push_thinking("Considering the sky", "gthought-1", text="Blue.")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        message = await stream.get_final_message()

    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Considering the sky"
    assert message.content[0].signature == "gthought-1"
    assert message.content[1].text == "Blue."
