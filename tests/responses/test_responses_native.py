"""The official SDK's client.responses against a native Responses upstream (kind "responses")."""

from __future__ import annotations

from fakes.responses_upstream import Reply, Text, Think
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
