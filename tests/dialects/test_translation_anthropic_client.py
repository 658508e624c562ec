"""Anthropic SDK → gateway (/v1/messages) → OpenAI, Anthropic and Gemini upstreams.

One test per protocol edge case; each drives the official SDK (stream helpers included) and
checks both what the client parsed and what the upstream received in its own dialect.
"""

from __future__ import annotations

import aiohttp
import anthropic
import orjson
import pytest
from fakes.anthropic_upstream import Canned
from fakes.openai_upstream import BreakStream
from translation_support import (
    IMAGE_URL,
    MODEL,
    NOW_TOOL_ANTHROPIC,
    PNG_B64,
    WEATHER_TOOL_ANTHROPIC,
    Turn,
    anthropic_client,
    one_model,
)

HELLO = [{"role": "user", "content": "hello there"}]


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


# --- text, non-stream and stream, over each upstream dialect ----------------------------------


async def test_anthropic_client_text_over_openai_upstream(gateway, openai_fake):
    openai_fake.push_turn(Turn(content="Bonjour from OpenAI"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    message = await client.messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=HELLO
    )

    assert text_of(message) == "Bonjour from OpenAI"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
    sent = openai_fake.requests[0].body
    assert sent["model"] == "up-model"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]


async def test_anthropic_client_stream_over_openai_upstream(gateway, openai_fake):
    openai_fake.push_turn(Turn(content="streamed words from openai"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        deltas = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert "".join(deltas) == "streamed words from openai"
    assert len(deltas) > 1
    assert text_of(message) == "streamed words from openai"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 7
    assert openai_fake.requests[0].body["stream"] is True


async def test_anthropic_client_text_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_text("Hallo from Gemini")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    message = await client.messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=HELLO
    )

    assert text_of(message) == "Hallo from Gemini"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)
    received = gemini_fake.requests[0]
    assert received.path == "/v1beta/models/up-model:generateContent"
    assert received.json["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert received.json["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert received.json["generationConfig"]["maxOutputTokens"] == 64


async def test_anthropic_client_stream_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_text("a streamed Gemini answer")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        deltas = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert "".join(deltas) == "a streamed Gemini answer"
    assert text_of(message) == "a streamed Gemini answer"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5
    assert gemini_fake.requests[0].path.endswith(":streamGenerateContent")


# --- same dialect: the fast path relays bytes untouched ---------------------------------------


async def _direct(fake, body: dict) -> bytes:
    """The bytes the fake sends for `body` when asked directly, without the gateway."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + "/v1/messages", json=body) as resp,
    ):
        return await resp.read()


async def test_same_dialect_bytes_untouched(gateway, anthropic_fake):
    canned = Canned([{"type": "text", "text": "relayed as is"}], model="claude-upstream-id")
    body = {"model": "up-model", "max_tokens": 64, "messages": HELLO}
    anthropic_fake.push(canned)
    expected = await _direct(anthropic_fake, body)
    anthropic_fake.push(canned)
    client = anthropic_client(await gateway(one_model("anthropic", anthropic_fake)))

    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert await raw.read() == expected
    assert (await raw.parse()).model == "claude-upstream-id"
    assert anthropic_fake.requests[1].json["model"] == "up-model"


async def test_same_dialect_stream_bytes_untouched(gateway, anthropic_fake):
    canned = Canned(
        [{"type": "text", "text": "a relayed stream of several chunks"}], model="claude-up-id"
    )
    body = {"model": "up-model", "max_tokens": 64, "messages": HELLO, "stream": True}
    anthropic_fake.push(canned)
    expected = await _direct(anthropic_fake, body)
    anthropic_fake.push(canned)
    client = anthropic_client(await gateway(one_model("anthropic", anthropic_fake)))

    async with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, messages=HELLO, stream=True
    ) as response:
        received = b"".join([chunk async for chunk in response.iter_bytes()])

    assert received == expected
    assert b'"model":"claude-up-id"' in received


async def test_same_dialect_stream_helper_final_message(gateway, anthropic_fake):
    anthropic_fake.push_thinking("Let me think", "sig-abc", text="42")
    client = anthropic_client(await gateway(one_model("anthropic", anthropic_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        message = await stream.get_final_message()

    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature == "sig-abc"
    assert message.content[0].thinking == "Let me think"
    assert text_of(message) == "42"


# --- tool use -----------------------------------------------------------------------------


async def test_anthropic_client_tool_loop_over_openai_upstream(gateway, openai_fake):
    openai_fake.push_turn(
        Turn(tool_calls=[("get_weather", '{"city": "Paris"}')], finish_reason="tool_calls")
    )
    openai_fake.push_turn(Turn(content="It is 18C in Paris."))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    ask = [{"role": "user", "content": "Weather in Paris?"}]

    first = await client.messages.create(
        model=MODEL, max_tokens=64, messages=ask, tools=[WEATHER_TOOL_ANTHROPIC]
    )

    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "18C"}
    history = [
        *ask,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    final = await client.messages.create(
        model=MODEL, max_tokens=64, messages=history, tools=[WEATHER_TOOL_ANTHROPIC]
    )

    assert text_of(final) == "It is 18C in Paris."
    assert final.stop_reason == "end_turn"
    sent = openai_fake.requests[0].body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL_ANTHROPIC["input_schema"]
    second = openai_fake.requests[1].body["messages"]
    assistant, tool = second[-2], second[-1]
    assert assistant["role"] == "assistant"
    assert [tc["id"] for tc in assistant["tool_calls"]] == [call.id]
    assert orjson.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "18C"}


async def test_anthropic_client_streamed_parallel_tool_calls_over_openai_upstream(
    gateway, openai_fake
):
    calls = [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Rome"}')]
    openai_fake.push_turn(Turn(tool_calls=calls, finish_reason="tool_calls"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    async with client.messages.stream(
        model=MODEL, max_tokens=64, messages=HELLO, tools=[WEATHER_TOOL_ANTHROPIC]
    ) as stream:
        message = await stream.get_final_message()

    uses = [b for b in message.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert len({u.id for u in uses}) == 2
    assert message.stop_reason == "tool_use"


async def test_anthropic_client_zero_argument_tool_over_openai_upstream(gateway, openai_fake):
    # OpenAI-compatible hosts send "" for a call without arguments; Anthropic wants input {}.
    openai_fake.push_turn(Turn(tool_calls=[("now", "")], finish_reason="tool_calls"))
    openai_fake.push_turn(Turn(tool_calls=[("now", "")], finish_reason="tool_calls"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    kwargs = {"model": MODEL, "max_tokens": 64, "messages": HELLO, "tools": [NOW_TOOL_ANTHROPIC]}

    whole = await client.messages.create(**kwargs)
    async with client.messages.stream(**kwargs) as stream:
        streamed = await stream.get_final_message()

    for message in (whole, streamed):
        (use,) = [b for b in message.content if b.type == "tool_use"]
        assert (use.name, use.input) == ("now", {})
    sent_tool = openai_fake.requests[0].body["tools"][0]["function"]
    assert sent_tool["parameters"]["type"] == "object"


async def test_anthropic_client_tool_loop_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_tool_calls([("get_weather", {"city": "Paris"}), ("now", {})])
    gemini_fake.push_text("Paris: 18C at noon.")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))
    tools = [WEATHER_TOOL_ANTHROPIC, NOW_TOOL_ANTHROPIC]
    ask = [{"role": "user", "content": "Weather in Paris, and the time?"}]

    async with client.messages.stream(
        model=MODEL, max_tokens=64, messages=ask, tools=tools
    ) as stream:
        first = await stream.get_final_message()

    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"}), ("now", {})]
    assert first.stop_reason == "tool_use"
    results = [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "18C"},
        {"type": "tool_result", "tool_use_id": uses[1].id, "content": "12:00"},
    ]
    history = [
        *ask,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": results},
    ]
    final = await client.messages.create(model=MODEL, max_tokens=64, messages=history, tools=tools)

    assert text_of(final) == "Paris: 18C at noon."
    contents = gemini_fake.requests[1].json["contents"]
    calls = [p for p in contents[-2]["parts"] if "functionCall" in p]
    assert [c["functionCall"]["name"] for c in calls] == ["get_weather", "now"]
    # An Anthropic client cannot carry Gemini's signature: the first call of the turn gets
    # Google's documented placeholder, the others none (Gemini 3 rejects unsigned turns).
    assert calls[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]
    responses = [p["functionResponse"] for p in contents[-1]["parts"]]
    assert [r["name"] for r in responses] == ["get_weather", "now"]
    assert "18C" in orjson.dumps(responses[0]["response"]).decode()
    assert "12:00" in orjson.dumps(responses[1]["response"]).decode()


# --- stop reasons -------------------------------------------------------------------------


async def test_openai_length_is_anthropic_max_tokens(gateway, openai_fake):
    openai_fake.push_turn(Turn(content="cut sho", finish_reason="length"))
    openai_fake.push_turn(Turn(content="cut sho", finish_reason="length"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    whole = await client.messages.create(model=MODEL, max_tokens=3, messages=HELLO)
    async with client.messages.stream(model=MODEL, max_tokens=3, messages=HELLO) as stream:
        streamed = await stream.get_final_message()

    assert whole.stop_reason == "max_tokens"
    assert streamed.stop_reason == "max_tokens"
    assert text_of(streamed) == "cut sho"


async def test_gemini_max_tokens_is_anthropic_max_tokens(gateway, gemini_fake):
    gemini_fake.push_text("cut", finish_reason="MAX_TOKENS")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    message = await client.messages.create(model=MODEL, max_tokens=3, messages=HELLO)

    assert message.stop_reason == "max_tokens"


# --- content: images and a mid-conversation system message ------------------------------------

IMAGES_TURN = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare these"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
            },
            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        ],
    }
]


async def test_anthropic_images_reach_openai_upstream_as_image_url(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    await client.messages.create(model=MODEL, max_tokens=64, messages=IMAGES_TURN)

    parts = openai_fake.requests[0].body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "Compare these"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PNG_B64}"
    assert parts[2]["image_url"]["url"] == IMAGE_URL


async def test_anthropic_images_reach_gemini_upstream(gateway, gemini_fake):
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    await client.messages.create(model=MODEL, max_tokens=64, messages=IMAGES_TURN)

    parts = gemini_fake.requests[0].json["contents"][-1]["parts"]
    assert parts[0] == {"text": "Compare these"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
    assert parts[2]["fileData"]["fileUri"] == IMAGE_URL


async def test_anthropic_system_message_mid_conversation_over_openai_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "system", "content": "From now on answer in French."},
        {"role": "user", "content": "second question"},
    ]

    await client.messages.create(model=MODEL, max_tokens=64, system="Top.", messages=messages)

    sent = openai_fake.requests[0].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "Top."),
        ("user", "first question"),
        ("assistant", "first answer"),
        ("system", "From now on answer in French."),
        ("user", "second question"),
    ]


async def test_anthropic_system_message_mid_conversation_over_gemini_upstream(gateway, gemini_fake):
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "system", "content": "From now on answer in French."},
        {"role": "user", "content": "second question"},
    ]

    await client.messages.create(model=MODEL, max_tokens=64, system="Top.", messages=messages)

    body = gemini_fake.requests[0].json
    assert body["systemInstruction"]["parts"] == [{"text": "Top."}]
    texts = orjson.dumps(body["contents"]).decode()
    assert "From now on answer in French." in texts
    assert [c["role"] for c in body["contents"]][-1] == "user"
    assert texts.index("first answer") < texts.index("From now on") < texts.index("second question")


# --- a stream that breaks mid-answer ------------------------------------------------------


async def _expect_stream_error(client) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
            await stream.get_final_message()
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"


async def test_anthropic_client_mid_stream_break_over_openai_upstream(gateway, openai_fake):
    openai_fake.queue(BreakStream(after=3))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))
    await _expect_stream_error(client)


async def test_anthropic_client_mid_stream_break_over_gemini_upstream(gateway, gemini_fake):
    gemini_fake.push_break("partial answer that never ends")
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))
    await _expect_stream_error(client)


async def test_anthropic_client_mid_stream_break_same_dialect(gateway, anthropic_fake):
    anthropic_fake.push_break("partial answer that never ends")
    client = anthropic_client(await gateway(one_model("anthropic", anthropic_fake)))
    await _expect_stream_error(client)
