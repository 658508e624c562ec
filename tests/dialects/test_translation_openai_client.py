"""OpenAI SDK → gateway (/v1/chat/completions) → Anthropic and Gemini upstreams.

One test per protocol edge case; each drives the official SDK (stream helpers included) and
checks both what the client parsed and what the upstream received in its own dialect.
"""

from __future__ import annotations

import openai
import orjson
import pytest
from fakes.anthropic_upstream import Canned
from translation_support import (
    CLIENT_TOKEN,
    IMAGE_URL,
    MODEL,
    NOW_TOOL_OPENAI,
    PNG_B64,
    WEATHER_TOOL_OPENAI,
    one_model,
)

HELLO = [{"role": "user", "content": "hello there"}]


def assistant_turn(message) -> dict:
    """The assistant message as a client sends it back: every field, extensions included."""
    return message.model_dump(exclude_none=True)


# --- text, non-stream and stream ----------------------------------------------------------


async def test_openai_client_text_over_anthropic_upstream(gateway, anthropic_fake):
    anthropic_fake.push_text("Hello from Claude")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    completion = await client.chat.completions.create(
        model=MODEL,
        max_tokens=50,
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
    )

    assert completion.choices[0].message.content == "Hello from Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)
    sent = anthropic_fake.requests[0].json
    assert sent["model"] == "up-model"
    assert sent["max_tokens"] == 50
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["messages"] in (
        [{"role": "user", "content": "hello there"}],
        [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    )


async def test_openai_client_stream_helper_over_anthropic_upstream(gateway, anthropic_fake):
    anthropic_fake.push_text("a streamed answer from Claude")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    async with client.chat.completions.stream(model=MODEL, messages=HELLO) as stream:
        deltas = [e.delta async for e in stream if e.type == "content.delta"]
        completion = await stream.get_final_completion()

    assert "".join(deltas) == "a streamed answer from Claude"
    assert len(deltas) > 1
    assert completion.choices[0].message.content == "a streamed answer from Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert anthropic_fake.requests[0].json["stream"] is True


async def test_openai_stream_usage_only_when_asked_over_anthropic_upstream(gateway, anthropic_fake):
    anthropic_fake.push_text("counted")
    anthropic_fake.push_text("not counted")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    asked = await client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    asked_chunks = [c async for c in asked]
    plain = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    plain_chunks = [c async for c in plain]

    usage_chunks = [c for c in asked_chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert asked_chunks[-1] is usage_chunks[0] and asked_chunks[-1].choices == []
    assert (usage_chunks[0].usage.prompt_tokens, usage_chunks[0].usage.completion_tokens) == (
        10,
        5,
    )
    assert all(c.usage is None and c.choices for c in plain_chunks)
    assert plain_chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_client_text_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_text("Hello from Gemini")
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *HELLO]
    )

    assert completion.choices[0].message.content == "Hello from Gemini"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)
    body = gemini_fake.requests[0].json
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]


async def test_openai_client_stream_over_gemini_upstream_with_usage(gateway, gemini_fake):
    gemini_fake.push_text("a streamed Gemini answer")
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    stream = await client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a streamed Gemini answer"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 15
    assert gemini_fake.requests[0].path.endswith(":streamGenerateContent")


# --- tool use -----------------------------------------------------------------------------


async def test_openai_client_tool_loop_over_anthropic_upstream(gateway, anthropic_fake):
    anthropic_fake.push_tool_calls([("get_weather", {"city": "Paris"})])
    anthropic_fake.push_text("It is 18C in Paris.")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)
    ask = [{"role": "user", "content": "Weather in Paris?"}]

    first = await client.chat.completions.create(
        model=MODEL, messages=ask, tools=[WEATHER_TOOL_OPENAI]
    )

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id == "toolu_00"
    assert (call.function.name, orjson.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    history = [
        *ask,
        assistant_turn(choice.message),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    final = await client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL_OPENAI]
    )

    assert final.choices[0].message.content == "It is 18C in Paris."
    assert final.choices[0].finish_reason == "stop"
    tool = anthropic_fake.requests[0].json["tools"][0]
    assert (tool["name"], tool["input_schema"]) == (
        "get_weather",
        WEATHER_TOOL_OPENAI["function"]["parameters"],
    )
    sent = anthropic_fake.requests[1].json["messages"]
    assert sent[1]["role"] == "assistant"
    assert [b for b in sent[1]["content"] if b["type"] == "tool_use"] == [
        {"type": "tool_use", "id": "toolu_00", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent[2]["role"] == "user"
    (result,) = sent[2]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_00"
    assert result["content"] in ("18C", [{"type": "text", "text": "18C"}])


async def test_openai_client_streamed_parallel_and_zero_argument_calls_over_anthropic_upstream(
    gateway, anthropic_fake
):
    anthropic_fake.push_tool_calls([("get_weather", {"city": "Paris"}), ("now", {})])
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    async with client.chat.completions.stream(
        model=MODEL, messages=HELLO, tools=[WEATHER_TOOL_OPENAI, NOW_TOOL_OPENAI]
    ) as stream:
        completion = await stream.get_final_completion()

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert [(i, n, orjson.loads(a)) for i, n, a in calls] == [
        ("toolu_00", "get_weather", {"city": "Paris"}),
        ("toolu_01", "now", {}),
    ]


async def test_openai_client_tool_loop_over_gemini_upstream_keeps_thought_signature(
    gateway, gemini_fake
):
    gemini_fake.push_tool_calls([("get_weather", {"city": "Paris"}), ("now", {})], "gsig-77")
    gemini_fake.push_text("Paris: 18C at noon.")
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)
    ask = [{"role": "user", "content": "Weather in Paris, and the time?"}]
    tools = [WEATHER_TOOL_OPENAI, NOW_TOOL_OPENAI]

    async with client.chat.completions.stream(model=MODEL, messages=ask, tools=tools) as stream:
        first = await stream.get_final_completion()

    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    calls = message.tool_calls
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("now", {}),
    ]
    history = [
        *ask,
        assistant_turn(message),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "12:00"},
    ]
    final = await client.chat.completions.create(model=MODEL, messages=history, tools=tools)

    assert final.choices[0].message.content == "Paris: 18C at noon."
    contents = gemini_fake.requests[1].json["contents"]
    parts = [p for p in contents[-2]["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "now"]
    assert parts[0]["thoughtSignature"] == "gsig-77"
    responses = [p["functionResponse"] for p in contents[-1]["parts"]]
    assert [r["name"] for r in responses] == ["get_weather", "now"]


# --- thinking: the signature must come back exactly ---------------------------------------

THINK_THEN_CALL = [
    {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig/Exact+=="},
    {"type": "tool_use", "id": "toolu_t1", "name": "get_weather", "input": {"city": "Oslo"}},
]


def _check_thinking_round_trip(anthropic_fake) -> None:
    sent = anthropic_fake.requests[1].json["messages"]
    assistant = sent[1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == THINK_THEN_CALL[0]
    assert assistant["content"][1] == THINK_THEN_CALL[1]
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_t1"


async def test_openai_client_thinking_signature_round_trip_over_anthropic_upstream(
    gateway, anthropic_fake
):
    anthropic_fake.push(Canned(list(THINK_THEN_CALL), stop_reason="tool_use"))
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)
    ask = [{"role": "user", "content": "Weather in Oslo?"}]

    first = await client.chat.completions.create(
        model=MODEL, messages=ask, tools=[WEATHER_TOOL_OPENAI], reasoning_effort="low"
    )
    message = first.choices[0].message
    history = [
        *ask,
        assistant_turn(message),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "-3C"},
    ]
    await client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL_OPENAI], reasoning_effort="low"
    )

    assert anthropic_fake.requests[0].json["thinking"]["type"] == "enabled"
    _check_thinking_round_trip(anthropic_fake)


async def test_openai_client_streamed_thinking_signature_round_trip_over_anthropic_upstream(
    gateway, anthropic_fake
):
    anthropic_fake.push(Canned(list(THINK_THEN_CALL), stop_reason="tool_use"))
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)
    ask = [{"role": "user", "content": "Weather in Oslo?"}]

    stream = await client.chat.completions.create(
        model=MODEL, messages=ask, tools=[WEATHER_TOOL_OPENAI], reasoning_effort="low", stream=True
    )
    chunks = [c async for c in stream]
    # Rebuild the assistant message as a client does: concatenate every field of the deltas.
    turn: dict = {"role": "assistant", "content": None}
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta.model_dump(exclude_none=True)
            for name, value in delta.items():
                if name == "tool_calls":
                    for tc in value:
                        slot = calls.setdefault(tc["index"], {"type": "function"})
                        slot.setdefault("id", tc.get("id"))
                        fn = slot.setdefault("function", {"name": "", "arguments": ""})
                        fn["name"] += tc.get("function", {}).get("name") or ""
                        fn["arguments"] += tc.get("function", {}).get("arguments") or ""
                elif isinstance(value, str) and name != "role":
                    turn[name] = (turn.get(name) or "") + value
                elif isinstance(value, list):
                    turn[name] = [*(turn.get(name) or []), *value]
    turn["tool_calls"] = [calls[i] for i in sorted(calls)]
    history = [*ask, turn, {"role": "tool", "tool_call_id": "toolu_t1", "content": "-3C"}]
    await client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL_OPENAI], reasoning_effort="low"
    )

    assert turn["tool_calls"][0]["id"] == "toolu_t1"
    _check_thinking_round_trip(anthropic_fake)


# --- stop reasons -------------------------------------------------------------------------


async def test_anthropic_max_tokens_is_openai_length(gateway, anthropic_fake):
    anthropic_fake.push_text("cut sho", stop_reason="max_tokens")
    anthropic_fake.push_text("cut sho", stop_reason="max_tokens")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    whole = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
    stream = await client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=3, stream=True
    )
    finishes = [c.choices[0].finish_reason async for c in stream if c.choices]

    assert whole.choices[0].finish_reason == "length"
    assert [f for f in finishes if f] == ["length"]


async def test_gemini_max_tokens_is_openai_length(gateway, gemini_fake):
    gemini_fake.push_text("cut", finish_reason="MAX_TOKENS")
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    completion = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)

    assert completion.choices[0].finish_reason == "length"


# --- images -------------------------------------------------------------------------------

IMAGES_TURN = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare these"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ],
    }
]


async def test_openai_images_reach_anthropic_upstream_as_image_blocks(gateway, anthropic_fake):
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    await client.chat.completions.create(model=MODEL, messages=IMAGES_TURN)

    blocks = anthropic_fake.requests[0].json["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": "Compare these"}
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}


async def test_openai_images_reach_gemini_upstream(gateway, gemini_fake):
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    await client.chat.completions.create(model=MODEL, messages=IMAGES_TURN)

    parts = gemini_fake.requests[0].json["contents"][0]["parts"]
    assert parts[0] == {"text": "Compare these"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
    assert parts[2]["fileData"]["fileUri"] == IMAGE_URL


# --- a stream that breaks mid-answer ------------------------------------------------------


async def _expect_stream_error(client) -> list:
    seen: list = []
    with pytest.raises(openai.APIError) as caught:
        stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        async for chunk in stream:
            seen.append(chunk)
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.body["type"] == "server_error"
    return seen


async def test_openai_client_mid_stream_break_over_anthropic_upstream(gateway, anthropic_fake):
    anthropic_fake.push_break("partial answer that never ends")
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    seen = await _expect_stream_error(client)

    assert not any(c.choices and c.choices[0].finish_reason for c in seen)


async def test_openai_client_mid_stream_break_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_break("partial answer that never ends")
    client = (await gateway(one_model("gemini", gemini_fake))).openai(CLIENT_TOKEN)

    seen = await _expect_stream_error(client)

    assert not any(c.choices and c.choices[0].finish_reason for c in seen)


# --- thinking next to redacted thinking: every block comes back, in order -----------------

THINK_REDACTED_CALL = [
    {"type": "thinking", "thinking": "Weather needs a tool.", "signature": "sig/First+=="},
    {"type": "redacted_thinking", "data": "EncryptedBlob+/=="},
    {"type": "tool_use", "id": "toolu_r1", "name": "get_weather", "input": {"city": "Oslo"}},
]


async def _send_back(client, message: dict) -> None:
    history = [
        {"role": "user", "content": "Weather in Oslo?"},
        message,
        {"role": "tool", "tool_call_id": "toolu_r1", "content": "-3C"},
    ]
    await client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL_OPENAI], reasoning_effort="low"
    )


@pytest.mark.parametrize("mode", ["whole", "stream_helper"])
async def test_openai_client_redacted_thinking_round_trip_over_anthropic_upstream(
    mode, gateway, anthropic_fake
):
    anthropic_fake.push(Canned(list(THINK_REDACTED_CALL), stop_reason="tool_use"))
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)
    kwargs = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": [WEATHER_TOOL_OPENAI],
        "reasoning_effort": "low",
    }

    if mode == "whole":
        completion = await client.chat.completions.create(**kwargs)
    else:
        async with client.chat.completions.stream(**kwargs) as stream:
            completion = await stream.get_final_completion()
    await _send_back(client, assistant_turn(completion.choices[0].message))

    assistant = anthropic_fake.requests[1].json["messages"][1]
    assert assistant["content"] == THINK_REDACTED_CALL
