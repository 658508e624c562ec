"""Stored responses: previous_response_id chains, retrieve/delete/input_items/cancel, both store
backends, and a gateway restart between turns (SQLite)."""

from __future__ import annotations

import json

import openai
import pytest
import yaml
from fakes.openai_upstream import Reply as ChatReply
from fakes.responses_upstream import Call, Fail, Reply, Text
from responses_support import (
    WEATHER_TOOL,
    ToolCallingChatUpstream,
    chat_provider,
    native_provider,
    responses_config,
    store_section,
)

from apex_ai_proxy.app import create_app
from apex_ai_proxy.config import load_config_file
from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.open_store import open_store


@pytest.fixture
async def chat_fake():
    fake = await ToolCallingChatUpstream("chat").start()
    yield fake
    await fake.stop()


async def test_native_tool_loop_uses_upstream_state(gateway, native, store_cfg):
    fake = await native()
    gw = await gateway(responses_config({"nat": native_provider(fake)}, {"m": ["nat"]}, store_cfg))
    client = gw.openai()
    fake.queue(Reply(Call("get_weather", '{"city": "Rome"}', "call_r1")), Reply(Text("Rome: hot")))
    first = await client.responses.create(model="m", input="weather in Rome?", tools=[WEATHER_TOOL])
    [call] = first.output
    assert call.type == "function_call" and call.call_id == "call_r1"
    second = await client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_r1", "output": "35C"}],
    )
    assert second.output_text == "Rome: hot"
    assert second.previous_response_id == first.id
    sent = fake.requests[1].body
    # The upstream keeps the state: only the new input goes, with its own previous id.
    assert sent["previous_response_id"] == first.id
    assert sent["input"] == [
        {"type": "function_call_output", "call_id": "call_r1", "output": "35C"}
    ]
    page = await client.responses.input_items.list(second.id)
    assert [i.type for i in page.data] == ["function_call_output"]


async def test_native_pinned_upstream_gone_sends_whole_conversation(gateway, native, store_cfg):
    first_up = await native("first")
    other_up = await native("other")
    cfg = responses_config(
        {"a": native_provider(first_up), "b": native_provider(other_up)},
        {"m": [{"provider": "a"}], "m2": [{"provider": "a"}, {"provider": "b", "weight": 0}]},
        store_cfg,
    )
    gw = await gateway(cfg)
    client = gw.openai()
    first = await client.responses.create(model="m2", input="remember 7", instructions="old")
    assert first.output_text.startswith("first")
    first_up.default = Fail(503, "down for maintenance")
    second = await client.responses.create(
        model="m2", input="what number?", previous_response_id=first.id
    )
    assert second.output_text == "other (m2) heard: what number?"
    sent = other_up.requests[-1].body
    assert "previous_response_id" not in sent and "instructions" not in sent
    assert [i.get("role") or i["type"] for i in sent["input"]] == ["user", "assistant", "user"]
    assert all("_apx" not in str(i.get("id", "")) for i in sent["input"])  # gateway ids removed


async def test_stream_previous_response_id_chain_on_chat_upstream(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    ids = []
    previous = None
    for turn in ("one", "two", "three"):
        async with client.responses.stream(
            model="m", input=turn, previous_response_id=previous
        ) as stream:
            final = await stream.get_final_response()
        assert final.previous_response_id == previous
        ids.append(final.id)
        previous = final.id
    messages = chat_fake.requests[-1].body["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "two", "three"]
    assert len(set(ids)) == 3
    stored = await client.responses.retrieve(ids[-1])
    assert stored.previous_response_id == ids[1] and stored.status == "completed"


async def test_unknown_ids_answer_in_openai_shape(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.retrieve("resp_nope")
    assert info.value.body["message"] == "Response with id 'resp_nope' not found."
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="m", input="x", previous_response_id="resp_gone")
    assert "resp_gone" in info.value.body["message"]
    assert info.value.body["param"] == "previous_response_id"
    assert chat_fake.requests == []


async def test_delete_then_404_and_cancel_is_honest(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    response = await client.responses.create(model="m", input="keep me")
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.cancel(response.id)
    assert "background" in info.value.body["message"]
    deleted = await client.responses.delete(response.id)
    assert deleted is None  # the SDK returns nothing; the HTTP status was 200
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.cancel(response.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="m", input="again", previous_response_id=response.id)


async def test_input_items_pagination(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    items = [{"role": "user", "content": f"part {i}"} for i in range(5)]
    response = await client.responses.create(model="m", input=items)
    default = await client.responses.input_items.list(response.id)
    texts = [i.content[0].text for i in default.data]
    assert texts == [f"part {i}" for i in reversed(range(5))]  # desc by default
    page = await client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [i.content[0].text for i in page.data] == ["part 0", "part 1"]
    assert (
        page.has_more is True
        and page.first_id == page.data[0].id
        and page.last_id == page.data[1].id
    )
    nxt = await client.responses.input_items.list(
        response.id, order="asc", limit=2, after=page.last_id
    )
    assert [i.content[0].text for i in nxt.data] == ["part 2", "part 3"]
    seen = [
        i.content[0].text
        async for i in client.responses.input_items.list(response.id, order="asc", limit=2)
    ]
    assert seen == [f"part {i}" for i in range(5)]
    before = await client.responses.input_items.list(
        response.id, order="asc", extra_query={"before": nxt.data[0].id}
    )
    assert [i.content[0].text for i in before.data] == ["part 0", "part 1"]


async def test_store_false_keeps_nothing(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    response = await client.responses.create(model="m", input="forget me", store=False)
    async with client.responses.stream(model="m", input="forget me too", store=False) as stream:
        streamed = await stream.get_final_response()
    for response_id in (response.id, streamed.id):
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response_id)


async def test_stored_before_the_id_reaches_the_client(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    client = gw.openai()
    chat_fake.queue(ChatReply("slow words come one by one", token_delay=0.15))
    async with client.responses.stream(model="m", input="go") as stream:
        async for event in stream:
            if event.type == "response.created":
                during = await client.responses.retrieve(event.response.id)
                assert during.status == "in_progress"
        final = await stream.get_final_response()
    assert (await client.responses.retrieve(final.id)).status == "completed"


async def test_record_names_upstream_without_secrets(gateway, native, tmp_path):
    fake = await native()
    section = store_section(tmp_path)
    gw = await gateway(
        responses_config(
            {"nat": native_provider(fake, "sk-very-secret-1")}, {"m": ["nat"]}, section
        )
    )
    client = gw.openai()
    response = await client.responses.create(model="m", input="hi")
    store = await open_store(ResponsesStoreConfig(**section))
    try:
        record = await store.get(response.id)
    finally:
        await store.close()
    assert (record.provider, record.key_name, record.upstream_response_id) == (
        "nat",
        "nat#0",
        response.id,
    )
    assert b"sk-very-secret-1" not in record.to_json()


async def test_conversation_survives_gateway_restart(native, tmp_path):
    fake = await native()
    section = store_section(tmp_path)
    cfg = responses_config({"oa": native_provider(fake)}, {"m": ["oa"]}, section)
    path = tmp_path / "restart.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")

    async def run_turn(**kwargs):
        app = create_app(load_config_file(path, {}))
        port = await app.start("127.0.0.1", 0)
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="t", max_retries=0
        )
        try:
            return await client.responses.create(model="m", **kwargs)
        finally:
            await client.close()
            await app.stop(grace=1.0)

    first = await run_turn(input="my name is Ada", store=True)
    fake.state.clear()  # the upstream forgot too: only the gateway's store can rebuild it
    second = await run_turn(input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = fake.requests[-1].body
    assert "previous_response_id" not in sent or sent.get("previous_response_id") is None
    texts = [json.dumps(i) for i in sent["input"]]
    assert "my name is Ada" in texts[0] and "heard: my name is Ada" in texts[1]


def test_bad_store_section_is_a_config_problem_with_its_path():
    from apex_ai_proxy.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"responses_store": {"backend": "mongo"}}, {})
    assert any(p.startswith("responses_store.backend:") for p in info.value.problems)


async def test_unusable_store_is_a_503_not_a_crash(gateway, chat_fake, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cfg = responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, None)
    cfg.pop("responses_store")
    gw = await gateway(cfg)
    gw.app.services.conversations.config = ResponsesStoreConfig(path=blocker / "responses.db")
    client = gw.openai()
    with pytest.raises(openai.InternalServerError) as info:
        await client.responses.create(model="m", input="hi")
    assert info.value.status_code == 503
    assert info.value.body["code"] == "response_store_unavailable"
    fine = await client.responses.create(model="m", input="hi", store=False)
    assert fine.output_text.startswith("chat (m) heard")
