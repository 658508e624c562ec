"""The official SDK's client.responses against a native Responses upstream (kind "responses")."""

from __future__ import annotations

import openai
import pytest
from fakes.responses_upstream import Call, Reply, Text, Think
from responses_support import native_provider, responses_config, store_section


async def start(gateway, tmp_path, fake, **top):
    cfg = responses_config(
        {"nat": native_provider(fake, "sk-nat-1")},
        {"gpt-5": [{"provider": "nat", "model": "up-gpt"}]},
        store_section(tmp_path),
        **top,
    )
    return await gateway(cfg)


async def test_create_returns_upstream_answer_and_stores_it(gateway, native, tmp_path):
    fake = await native()
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    response = await client.responses.create(model="gpt-5", input="hello there")
    assert response.output_text == "native (up-gpt) heard: hello there"
    assert response.usage is not None and response.usage.input_tokens == 11
    [req] = fake.requests
    assert (req.path, req.key, req.body["model"]) == ("/v1/responses", "sk-nat-1", "up-gpt")
    assert req.body["input"] == "hello there"
    again = await client.responses.retrieve(response.id)
    assert again.id == response.id
    assert again.output_text == response.output_text


async def test_stream_with_sdk_helpers_ids_match_retrieve(gateway, native, tmp_path):
    fake = await native()
    fake.queue(Reply(Think("thinking hard"), Text("the answer is 42")))
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    deltas = []
    async with client.responses.stream(model="gpt-5", input="question") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(deltas) == "the answer is 42"
    assert final.output_text == "the answer is 42"
    stored = await client.responses.retrieve(final.id)
    assert stored.status == "completed"
    assert [i.id for i in stored.output] == [i.id for i in final.output]
    assert stored.usage is not None


async def test_coding_agent_resends_everything_with_store_false(gateway, native, tmp_path):
    fake = await native()
    fake.queue(
        Reply(
            Think("look at the file", "enc-opaque-1"),
            Call("read_file", '{"path": "a.py"}', "call_a"),
        ),
        Reply(Text("done")),
    )
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    tools = [
        {"type": "function", "name": "read_file", "parameters": {"type": "object"}},
        {"type": "custom", "name": "apply_patch", "description": "freeform"},
    ]
    history: list = [{"role": "user", "content": [{"type": "input_text", "text": "fix a.py"}]}]
    common = dict(model="gpt-5", store=False, include=["reasoning.encrypted_content"], tools=tools)
    async with client.responses.stream(input=history, **common) as stream:
        first = await stream.get_final_response()
    reasoning, call = first.output
    assert reasoning.encrypted_content == "enc-opaque-1" and call.call_id == "call_a"
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": "call_a", "output": "print(1)"})
    second = await client.responses.create(input=history, **common)
    assert second.output_text == "done"
    sent = fake.requests[1].body
    assert sent["tools"] == tools  # a native upstream gets every tool it was given
    assert sent["input"][1]["encrypted_content"] == "enc-opaque-1"
    assert sent["input"][1]["id"] == reasoning.id  # upstream's own ids are kept
    assert "previous_response_id" not in sent
    for response_id in (first.id, second.id):
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response_id)


async def test_incomplete_answer_keeps_its_status(gateway, native, tmp_path):
    fake = await native()
    fake.queue(Reply(Text("cut"), status="incomplete"))
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    async with client.responses.stream(
        model="gpt-5", input="long story", max_output_tokens=16
    ) as stream:
        events = [event.type async for event in stream]
    assert events[-1] == "response.incomplete"
    assert fake.requests[0].body["max_output_tokens"] == 16
    listed = [e for e in events if e.startswith("response.") and e.count(".") == 1]
    assert listed == ["response.created", "response.in_progress", "response.incomplete"]


async def test_chat_client_reaches_native_upstream(gateway, native, tmp_path):
    """The other direction: a Chat Completions client on a Responses upstream (translated)."""
    fake = await native()
    fake.queue(
        Reply(Think("hmm", "enc-2"), Call("get_weather", '{"city": "Nice"}', "call_n")),
        Reply(Text("sunny and warm")),
    )
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }
    first = await client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "weather?"}],
        tools=[tool],
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert (
        message.tool_calls[0].id == "call_n"
        and message.tool_calls[0].function.name == "get_weather"
    )
    sent = fake.requests[0].body
    assert sent["instructions"] == "sys" and sent["store"] is False
    assert sent["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]}
    ]
    assert sent["tools"][0]["name"] == "get_weather"
    stream = await client.chat.completions.create(
        model="gpt-5",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [tc.model_dump() for tc in message.tool_calls],
            },
            {"role": "tool", "tool_call_id": "call_n", "content": "25C"},
        ],
        tools=[tool],
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "sunny and warm"
    sent = fake.requests[1].body
    assert [i.get("type") for i in sent["input"][1:]] == ["function_call", "function_call_output"]
    assert sent["stream"] is True


async def test_streamed_turn_continues_on_the_upstream_that_holds_the_state(
    gateway, native, tmp_path
):
    fake = await native()
    gw = await start(gateway, tmp_path, fake)
    client = gw.openai()
    async with client.responses.stream(model="gpt-5", input="first turn") as stream:
        first = await stream.get_final_response()
    async with client.responses.stream(
        model="gpt-5", input="second turn", previous_response_id=first.id
    ) as stream:
        second = await stream.get_final_response()
    assert second.previous_response_id == first.id
    assert fake.requests[1].body["previous_response_id"] == first.id
    assert fake.requests[1].body["input"] == "second turn"
    stored = await client.responses.retrieve(second.id)
    assert stored.previous_response_id == first.id and stored.status == "completed"
    items = await client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["second turn"]
