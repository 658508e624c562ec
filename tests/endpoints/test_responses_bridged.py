"""client.responses bridged onto Chat Completions and Anthropic upstreams (translated path)."""

from __future__ import annotations

import json

import pytest
from fakes.anthropic_upstream import FakeAnthropic
from responses_support import (
    WEATHER_TOOL,
    WEB_SEARCH_TOOL,
    ToolCallingChatUpstream,
    anthropic_provider,
    chat_provider,
    responses_config,
    store_section,
)


@pytest.fixture
async def chat_fake():
    fake = await ToolCallingChatUpstream("chat").start()
    yield fake
    await fake.stop()


@pytest.fixture
async def claude():
    async with FakeAnthropic() as fake:
        yield fake


async def chat_gateway(gateway, tmp_path, fake):
    cfg = responses_config(
        {"oa": chat_provider(fake)},
        {"m": [{"provider": "oa", "model": "chat-up"}]},
        store_section(tmp_path),
    )
    return await gateway(cfg)


async def claude_gateway(gateway, tmp_path, fake):
    cfg = responses_config(
        {"ant": anthropic_provider(fake)},
        {"m": [{"provider": "ant", "model": "claude-up"}]},
        store_section(tmp_path),
    )
    return await gateway(cfg)


async def test_chat_upstream_text_answer(gateway, tmp_path, chat_fake):
    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    response = await client.responses.create(
        model="m", instructions="be brief", input="hello", temperature=0.2, metadata={"k": "v"}
    )
    assert response.output_text == "chat (chat-up) heard: hello"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.instructions == "be brief" and response.metadata == {"k": "v"}
    assert response.usage is not None and response.usage.total_tokens > 0
    [req] = chat_fake.requests
    assert req.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert req.body["temperature"] == 0.2
    stored = await client.responses.retrieve(response.id)
    assert stored.output_text == response.output_text
    assert [i.id for i in stored.output] == [i.id for i in response.output]


async def test_chat_upstream_stream_event_sequence(gateway, tmp_path, chat_fake):
    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    events = []
    async with client.responses.stream(model="m", input="stream me please") as stream:
        async for event in stream:
            events.append(event)
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "chat (chat-up) heard: stream me please" == final.output_text
    item_id = events[2].item.id
    assert {e.item_id for e in events if hasattr(e, "item_id")} == {item_id}
    assert final.usage is not None and final.usage.output_tokens > 0
    stored = await client.responses.retrieve(final.id)
    assert stored.id == events[0].response.id == final.id
    assert [i.id for i in stored.output] == [item_id]


async def test_chat_upstream_tool_loop_with_previous_response_id(gateway, tmp_path, chat_fake):
    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    chat_fake.queue_calls(("get_weather", '{"city": "Paris"}'))
    first = await client.responses.create(
        model="m",
        input="weather in Paris?",
        tools=[WEATHER_TOOL, WEB_SEARCH_TOOL],
        instructions="old rules",
    )
    [call] = [i for i in first.output if i.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    sent_tools = chat_fake.requests[0].body["tools"]
    assert [t["function"]["name"] for t in sent_tools] == ["get_weather"]  # web search dropped
    second = await client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}],
        tools=[WEATHER_TOOL],
    )
    assert second.previous_response_id == first.id
    messages = chat_fake.requests[1].body["messages"]
    assert messages[0] == {"role": "user", "content": "weather in Paris?"}  # no old instructions
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
    assert second.output_text.startswith("chat (chat-up) heard:")


async def test_anthropic_upstream_stream_tool_round_trip_store_false(gateway, tmp_path, claude):
    """A coding agent: store false, whole history resent, encrypted reasoning included."""
    gw = await claude_gateway(gateway, tmp_path, claude)
    client = gw.openai()
    claude.push_thinking("I should call the tool", "sig-abc")
    claude.queue[-1].blocks.append(
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
    )
    claude.queue[-1].stop_reason = "tool_use"
    history = [{"role": "user", "content": [{"type": "input_text", "text": "weather in Oslo?"}]}]
    common = dict(
        model="m",
        store=False,
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low", "summary": "auto"},
        tools=[WEATHER_TOOL, {"type": "local_shell"}, {"type": "brand_new_tool_kind", "x": 1}],
        instructions="You are a coding agent.",
        prompt_cache_key="session-1",
        some_future_field={"a": 1},
    )
    events = []
    async with client.responses.stream(
        input=history,
        extra_body={"some_future_field": 1},
        **{k: v for k, v in common.items() if k != "some_future_field"},
    ) as stream:
        async for event in stream:
            events.append(event)
        first = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.function_call_arguments.delta" in kinds
    reasoning = next(i for i in first.output if i.type == "reasoning")
    call = next(i for i in first.output if i.type == "function_call")
    assert reasoning.summary[0].text == "I should call the tool"
    assert reasoning.encrypted_content
    sent = claude.requests[0].json
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    # Turn 2: the client sends everything again, as it received it.
    history += [reasoning.model_dump(exclude_none=True), call.model_dump(exclude_none=True)]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "cold"})
    claude.push_text("It is cold in Oslo.")
    second = await client.responses.create(
        input=history,
        extra_body={"some_future_field": 1},
        **{k: v for k, v in common.items() if k != "some_future_field"},
    )
    assert second.output_text == "It is cold in Oslo."
    messages = claude.requests[1].json["messages"]
    assistant = messages[1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "I should call the tool",
        "signature": "sig-abc",
    }
    assert (
        assistant["content"][1]["type"] == "tool_use"
        and assistant["content"][1]["id"] == call.call_id
    )
    assert messages[2]["content"][0]["type"] == "tool_result"
    with pytest.raises(Exception) as info:
        await client.responses.retrieve(second.id)
    assert getattr(info.value, "status_code", None) == 404


async def test_chat_upstream_streamed_parallel_tool_calls(gateway, tmp_path, chat_fake):
    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    chat_fake.queue_calls(("get_weather", '{"city": "A"}'), ("get_weather", '{"city": "B"}'))
    async with client.responses.stream(
        model="m", input="two cities", tools=[WEATHER_TOOL]
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    calls = [i for i in final.output if i.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "A"}, {"city": "B"}]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [e.item_id for e in done] == [c.id for c in calls]
    assert chat_fake.requests[0].body["stream"] is True
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 5


async def test_broken_upstream_stream_ends_failed_and_is_stored(gateway, tmp_path, chat_fake):
    from fakes.openai_upstream import BreakStream

    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    chat_fake.queue(BreakStream(after=2))
    stream = await client.responses.create(model="m", input="one two three four five", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.error is not None and failed.usage is not None
    stored = await client.responses.retrieve(failed.id)
    assert stored.status == "failed"
    assert stored.output[0].content[0].text == "".join(
        e.delta for e in events if e.type == "response.output_text.delta"
    )


async def test_invalid_requests_are_refused_before_any_upstream(gateway, tmp_path, chat_fake):
    import openai

    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    client = gw.openai()
    for bad in ({"input": 5}, {"input": "x", "background": True}, {"input": "x", "stream": "yes"}):
        with pytest.raises(openai.BadRequestError) as info:
            await client.post("/responses", body={"model": "m", **bad}, cast_to=object)
        assert info.value.body["type"] == "invalid_request_error"
    assert chat_fake.requests == []


@pytest.fixture
async def gemini():
    from fakes.gemini_upstream import FakeGemini

    async with FakeGemini() as fake:
        yield fake


async def test_gemini_function_call_signature_survives_both_kinds_of_turn(
    gateway, tmp_path, gemini
):
    """Gemini wants its thoughtSignature back on the functionCall: through the store
    (previous_response_id) and when a store-false client resends the items it was given."""
    cfg = responses_config(
        {"gem": {**anthropic_provider(gemini), "kind": "gemini"}},
        {"m": [{"provider": "gem", "model": "gemini-up"}]},
        store_section(tmp_path),
    )
    gw = await gateway(cfg)
    client = gw.openai()
    gemini.push_tool_calls([("get_weather", {"city": "Bern"})], signature="gsig-stored")
    first = await client.responses.create(model="m", input="weather?", tools=[WEATHER_TOOL])
    call = next(i for i in first.output if i.type == "function_call")
    gemini.push_text("mild")
    output = [{"type": "function_call_output", "call_id": call.call_id, "output": "12C"}]
    second = await client.responses.create(model="m", previous_response_id=first.id, input=output)
    assert second.output_text == "mild"
    model_turn = gemini.requests[1].json["contents"][1]
    assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
    assert model_turn["parts"][0]["thoughtSignature"] == "gsig-stored"

    gemini.push_tool_calls([("get_weather", {"city": "Chur"})], signature="gsig-streamed")
    history = [{"role": "user", "content": "weather in Chur?"}]
    async with client.responses.stream(
        model="m", input=history, tools=[WEATHER_TOOL], store=False
    ) as stream:
        streamed = await stream.get_final_response()
    history += [item.model_dump(exclude_none=True) for item in streamed.output]
    call = next(i for i in streamed.output if i.type == "function_call")
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "8C"})
    gemini.push_text("cold")
    third = await client.responses.create(
        model="m", input=history, tools=[WEATHER_TOOL], store=False
    )
    assert third.output_text == "cold"
    model_turn = gemini.requests[3].json["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "gsig-streamed"
    assert model_turn["parts"][0]["functionCall"]["args"] == {"city": "Chur"}


async def test_every_responses_request_leaves_a_writable_record(gateway, tmp_path, chat_fake):
    import orjson

    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    core = gw.app.services
    seen = []
    original = core.record
    core.record = lambda ctx: (seen.append(ctx), original(ctx))
    client = gw.openai()
    created = await client.responses.create(model="m", input="hello", tools=[WEB_SEARCH_TOOL])
    await client.responses.retrieve(created.id)
    records = [orjson.loads(orjson.dumps(ctx.finish().to_dict())) for ctx in seen]
    assert [(r["endpoint"], r["status"]) for r in records] == [
        ("/v1/responses", 200),
        ("/v1/responses/{id}", 200),
    ]
    assert records[0]["bytes_in"] > 0 and records[0]["provider"] == "oa"
    assert records[0]["dropped_fields"] == ["tools[web_search_preview]"]


async def test_structured_output_via_text_format_on_a_chat_upstream(gateway, tmp_path, chat_fake):
    from fakes.openai_upstream import Reply as ChatReply
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    gw = await chat_gateway(gateway, tmp_path, chat_fake)
    chat_fake.queue(ChatReply('{"name": "Lyon", "population": 520000}'))
    parsed = await gw.openai().responses.parse(model="m", input="a city", text_format=City)
    assert parsed.output_parsed == City(name="Lyon", population=520000)
    fmt = chat_fake.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert fmt["json_schema"]["schema"]["required"] == ["name", "population"]
