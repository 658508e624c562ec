"""google-genai SDK → gateway (/v1beta/models/…) → OpenAI, Anthropic, Responses and Gemini upstreams.

Each test runs once per upstream dialect: what the SDK parsed, and what the upstream received
in its own dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from gemini_support import (
    NOW_DECLARATION,
    WEATHER_DECLARATION,
    Scripted,
    genai_client,
    start_fake,
)
from google.genai import types
from translation_support import MODEL, PROVIDER_KEY, one_model

KINDS = ["openai", "anthropic", "responses", "gemini"]
TOOLS = [types.Tool(function_declarations=[WEATHER_DECLARATION, NOW_DECLARATION])]
QUESTION = "Weather in Paris, and the time?"


@pytest.fixture(params=KINDS)
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Scripted]:
    scripted = await start_fake(request.param)
    yield scripted
    await scripted.fake.stop()


async def client_for(gateway, upstream: Scripted):
    return genai_client(await gateway(one_model(upstream.kind, upstream.fake)))


def upstream_text(body: dict) -> str:
    return orjson.dumps(body).decode()


async def test_gemini_client_text(gateway, upstream):
    upstream.text("Bonjour from upstream")
    client = await client_for(gateway, upstream)

    answer = await client.aio.models.generate_content(
        model=MODEL,
        contents="hello there",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64),
    )

    assert answer.text == "Bonjour from upstream"
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.usage_metadata.prompt_token_count > 0
    assert answer.usage_metadata.candidates_token_count > 0
    (sent,) = upstream.bodies()
    assert "hello there" in upstream_text(sent)
    assert "Be brief." in upstream_text(sent)
    if upstream.kind == "gemini":  # the same dialect: the body as sent, the model in the URL
        (received,) = upstream.fake.requests
        assert received.path == "/v1beta/models/up-model:generateContent"
        assert received.headers["x-goog-api-key"] == PROVIDER_KEY
        assert "model" not in sent and "stream" not in sent
        assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert sent["generationConfig"] == {"maxOutputTokens": 64}
    else:
        assert sent["model"] == "up-model"


async def test_gemini_client_stream(gateway, upstream):
    upstream.text("streamed words from the upstream")
    client = await client_for(gateway, upstream)

    chunks = [
        chunk
        async for chunk in await client.aio.models.generate_content_stream(
            model=MODEL, contents="hello there"
        )
    ]

    assert "".join(c.text or "" for c in chunks) == "streamed words from the upstream"
    assert len(chunks) > 2  # streamed, not one whole answer
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.total_token_count > 0
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    if upstream.kind == "gemini":
        assert upstream.fake.requests[0].path == "/v1beta/models/up-model:streamGenerateContent"
        assert upstream.fake.requests[0].query == {"alt": "sse"}


def _call_results(kind: str, body: dict) -> dict[str, str]:
    """{call id (the name for Gemini, which pairs by name): the result text} of the last turn."""
    if kind == "openai":
        return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}
    if kind == "anthropic":
        blocks = [
            b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        return {b["tool_use_id"]: b["content"] for b in blocks if b["type"] == "tool_result"}
    if kind == "responses":
        items = [i for i in body["input"] if i.get("type") == "function_call_output"]
        return {i["call_id"]: i["output"] for i in items}
    parts = [p for c in body["contents"] for p in c["parts"] if "functionResponse" in p]
    return {
        p["functionResponse"]["name"]: p["functionResponse"]["response"]["result"] for p in parts
    }


def _upstream_call_ids(kind: str, body: dict) -> list[str]:
    """The ids the upstream gave its calls, as the gateway sends them back to it."""
    if kind == "openai":
        return [c["id"] for m in body["messages"] for c in m.get("tool_calls") or []]
    if kind == "anthropic":
        blocks = [
            b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        return [b["id"] for b in blocks if b["type"] == "tool_use"]
    if kind == "responses":
        return [i["call_id"] for i in body["input"] if i.get("type") == "function_call"]
    return [
        p["functionCall"]["name"]
        for c in body["contents"]
        for p in c["parts"]
        if "functionCall" in p
    ]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
async def test_gemini_client_function_call_round_trip(gateway, upstream, streamed):
    upstream.calls([("get_weather", {"city": "Paris"}), ("now", {})])
    upstream.text("Sunny in Paris at noon.")
    client = await client_for(gateway, upstream)
    config = types.GenerateContentConfig(tools=TOOLS)
    question = types.Content(role="user", parts=[types.Part.from_text(text=QUESTION)])

    if streamed:
        chunks = [
            c
            async for c in await client.aio.models.generate_content_stream(
                model=MODEL, contents=[question], config=config
            )
        ]
        parts = [p for c in chunks for p in c.candidates[0].content.parts or []]
        model_turn = types.Content(role="model", parts=[p for p in parts if p.function_call])
        assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    else:
        answer = await client.aio.models.generate_content(
            model=MODEL, contents=[question], config=config
        )
        model_turn = answer.candidates[0].content
    calls = [p.function_call for p in model_turn.parts if p.function_call]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"}), ("now", {})]
    if upstream.kind != "gemini":  # ids from the upstream's calls; Gemini's own calls have none
        assert all(c.id for c in calls) and len({c.id for c in calls}) == 2

    results = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=c.id, name=c.name, response={"result": f"{c.name} says ok"}
                )
            )
            for c in calls
        ],
    )
    final = await client.aio.models.generate_content(
        model=MODEL, contents=[question, model_turn, results], config=config
    )

    assert final.text == "Sunny in Paris at noon."
    first, second = upstream.bodies()
    assert "city" in upstream_text(first)  # the declared parameters reached the upstream
    ids = _upstream_call_ids(upstream.kind, second)
    got = _call_results(upstream.kind, second)
    assert [got[i] for i in ids] == ["get_weather says ok", "now says ok"]


async def test_gemini_client_count_tokens(gateway, upstream):
    client = await client_for(gateway, upstream)

    counted = await client.aio.models.count_tokens(
        model=MODEL, contents="How many tokens are in this sentence, roughly?"
    )

    if upstream.kind == "gemini":  # counted by the upstream itself
        assert counted.total_tokens == 42
        (received,) = upstream.fake.requests
        assert received.path == "/v1beta/models/up-model:countTokens"
        assert received.json["contents"][0]["parts"][0]["text"].startswith("How many")
    else:  # estimated: no other dialect counts for Gemini clients
        assert 5 <= counted.total_tokens <= 40
        assert upstream.bodies() == []


async def test_gemini_client_lists_and_gets_models(gateway, upstream):
    client = await client_for(gateway, upstream)

    names = [m.name async for m in await client.aio.models.list()]
    model = await client.aio.models.get(model=MODEL)

    assert f"models/{MODEL}" in names
    assert model.name == f"models/{MODEL}"
    assert "generateContent" in model.supported_actions
