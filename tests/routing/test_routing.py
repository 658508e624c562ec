"""Routing through the gateway with the official SDK: OpenAI-compatible and Azure upstreams,
embeddings, /v1/models, health endpoints, gateway headers, credentials, `model#provider`, echo."""

from __future__ import annotations

import time

import openai
import pytest
from fakes.openai_upstream import split_tokens
from gateway_config import (
    AZURE_VERSION,
    MESSAGES,
    azure_provider,
    chat,
    config,
    model,
    openai_provider,
    stream_text,
)


async def test_chat_routed_to_openai_compatible_upstream(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(
        config(
            {"oa": openai_provider(up, "sk-oa-1")},
            {"gpt-4o": model({"provider": "oa", "model": "up-model"})},
        )
    )
    completion, headers = await chat(gw.openai(), "gpt-4o")
    assert completion.choices[0].message.content == "up (up-model) heard: ping from the test"
    assert completion.usage.total_tokens > 0
    [req] = up.requests
    assert (req.path, req.model, req.key) == ("/v1/chat/completions", "up-model", "sk-oa-1")
    assert req.body["messages"] == MESSAGES
    assert headers["x-apex-provider"] == "oa"
    assert headers["x-apex-model"] == "up-model"
    assert headers["x-apex-attempts"] == "1"
    assert headers["x-request-id"]


async def test_request_ids_differ_between_requests(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(config({"oa": openai_provider(up)}, {"m": model("oa")}))
    client = gw.openai()
    ids = {(await chat(client, "m"))[1]["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_stream_routed_to_openai_compatible_upstream(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(
        config(
            {"oa": openai_provider(up)}, {"gpt-4o": model({"provider": "oa", "model": "up-model"})}
        )
    )
    text, chunks, headers = await stream_text(
        gw.openai(), "gpt-4o", stream_options={"include_usage": True}
    )
    assert text == "up (up-model) heard: ping from the test"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(
        split_tokens(text)
    )
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-apex-provider"] == "oa"
    assert headers["x-apex-attempts"] == "1"
    assert up.requests[0].stream


async def test_chat_routed_to_azure_deployment(gateway, fake_upstream):
    az = await fake_upstream("az")
    gw = await gateway(
        config(
            {"azure": azure_provider(az, "az-key-1")},
            {"gpt-4o": model({"provider": "azure", "model": "prod-gpt4o"})},
        )
    )
    completion, headers = await chat(gw.openai(), "gpt-4o")
    assert completion.choices[0].message.content == "az (prod-gpt4o) heard: ping from the test"
    [req] = az.requests
    assert req.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert req.query == {"api-version": AZURE_VERSION}
    assert req.headers["api-key"] == "az-key-1"
    assert "authorization" not in req.headers
    assert headers["x-apex-provider"] == "azure"


async def test_stream_routed_to_azure_deployment(gateway, fake_upstream):
    az = await fake_upstream("az")
    gw = await gateway(
        config(
            {"azure": azure_provider(az, "az-key-1")},
            {"gpt-4o": model({"provider": "azure", "model": "dep"})},
        )
    )
    text, _, _ = await stream_text(gw.openai(), "gpt-4o")
    assert text == "az (dep) heard: ping from the test"
    assert az.requests[0].path == "/openai/deployments/dep/chat/completions"
    assert az.requests[0].headers["api-key"] == "az-key-1"


async def test_embeddings_openai_and_azure(gateway, fake_upstream):
    up = await fake_upstream("up")
    az = await fake_upstream("az")
    gw = await gateway(
        config(
            {"oa": openai_provider(up, "sk-oa"), "azure": azure_provider(az, "az-key")},
            {
                "emb": model({"provider": "oa", "model": "text-embedding-3-small"}),
                "emb-az": model({"provider": "azure", "model": "emb-deployment"}),
            },
        )
    )
    client = gw.openai()
    result = await client.embeddings.create(
        model="emb", input=["abc", "de"], encoding_format="float"
    )
    assert [e.embedding for e in result.data] == [[3.0, 0.0, 0.5], [2.0, 1.0, 0.5]]
    assert (up.requests[0].path, up.requests[0].model, up.requests[0].key) == (
        "/v1/embeddings",
        "text-embedding-3-small",
        "sk-oa",
    )
    result = await client.embeddings.create(model="emb-az", input="abcd")  # SDK default: base64
    assert result.data[0].embedding == [4.0, 0.0, 0.5]
    assert az.requests[0].path == "/openai/deployments/emb-deployment/embeddings"
    assert az.requests[0].headers["api-key"] == "az-key"


async def test_models_lists_configured_names_in_openai_shape(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(
        config(
            {"oa": openai_provider(up, models=["served-bare"])},
            {"gpt-4o": model("oa"), "claude-ish": model({"provider": "oa", "model": "x"})},
        )
    )
    listed = await gw.openai().models.list()
    assert sorted(m.id for m in listed.data) == ["claude-ish", "gpt-4o", "served-bare"]
    async with gw.http().get("/v1/models") as resp:
        body = await resp.json()
    assert body["object"] == "list"
    assert all(item["object"] == "model" and isinstance(item["id"], str) for item in body["data"])
    assert up.requests == []


async def test_healthz_and_readyz(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(
        config({"oa": openai_provider(up)}, {"m": model("oa")}, gateway_tokens=["tok"])
    )
    http = gw.http()
    for path in ("/healthz", "/readyz"):
        async with http.get(path) as resp:
            assert resp.status == 200, path


async def test_client_credential_never_reaches_upstream(gateway, fake_upstream):
    up = await fake_upstream("up")
    az = await fake_upstream("az")
    token = "gw-client-secret-token-123"
    gw = await gateway(
        config(
            {"oa": openai_provider(up, "sk-provider"), "azure": azure_provider(az, "az-provider")},
            {"a": model("oa"), "b": model("azure")},
            gateway_tokens=[token],
        )
    )
    client = gw.openai(token)
    await chat(client, "a")
    await stream_text(client, "b")
    await client.embeddings.create(model="a", input="x")
    async with gw.http().post(
        "/v1/chat/completions",
        json={"model": "b", "messages": MESSAGES},
        headers={"x-api-key": token},
    ) as resp:
        assert resp.status == 200
    assert [r.key for r in up.requests] == ["sk-provider", "sk-provider"]
    assert [r.key for r in az.requests] == ["az-provider", "az-provider"]
    for req in up.requests + az.requests:
        assert token not in str(req.headers), req.headers
        assert token.encode() not in req.raw
        assert "x-api-key" not in req.headers


async def test_upstreams_are_asked_for_identity_encoded_answers(gateway, fake_upstream):
    """Without Accept-Encoding an upstream may compress (RFC 9110 12.5.3): a gzip error body
    would be relayed unreadable and could not be searched for a quoted key."""
    up = await fake_upstream("up")
    gw = await gateway(config({"oa": openai_provider(up, "sk-provider")}, {"m": model("oa")}))
    client = gw.openai()
    await chat(client, "m")
    await stream_text(client, "m")
    assert [r.headers.get("accept-encoding") for r in up.requests] == ["identity", "identity"]


async def test_client_bearer_not_forwarded_without_gateway_tokens(gateway, fake_upstream):
    up = await fake_upstream("up")
    gw = await gateway(config({"oa": openai_provider(up, "sk-provider")}, {"m": model("oa")}))
    await chat(gw.openai("sk-client-own-key"), "m")
    assert up.requests[0].key == "sk-provider"
    assert "sk-client-own-key" not in str(up.requests[0].headers)


async def test_model_hash_provider_pins_alias_entry(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    gw = await gateway(
        config(
            {"pa": openai_provider(a), "pb": openai_provider(b)},
            {
                "gpt-4o": model(
                    {"provider": "pa", "model": "a-name"},
                    {"provider": "pb", "model": "b-name"},
                    strategy="round-robin",
                )
            },
        )
    )
    client = gw.openai()
    for _ in range(4):
        completion, headers = await chat(client, "gpt-4o#pb")
        assert completion.choices[0].message.content.startswith("b (b-name)")
        assert headers["x-apex-provider"] == "pb"
    assert a.requests == []
    assert [r.model for r in b.requests] == ["b-name"] * 4


async def test_model_hash_provider_sends_bare_name_when_no_alias(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"pa": openai_provider(a)}, {"gpt-4o": model("pa")}))
    client = gw.openai()
    completion, _ = await chat(client, "llama-3-70b#pa")
    assert completion.choices[0].message.content.startswith("a (llama-3-70b)")
    text, _, _ = await stream_text(client, "org/model#v2#pa")
    assert text.startswith("a (org/model#v2)")
    assert [r.model for r in a.requests] == ["llama-3-70b", "org/model#v2"]


async def test_model_hash_unknown_provider_is_404(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"pa": openai_provider(a)}, {"gpt-4o": model("pa")}))
    with pytest.raises(openai.NotFoundError) as err:
        await chat(gw.openai(), "gpt-4o#nope")
    assert "nope" in err.value.message
    assert a.requests == []


async def test_echo_provider_answers_locally(gateway):
    gw = await gateway(
        config({"echo": {"kind": "echo", "token_delay_ms": 30}}, {"echo": model("echo")})
    )
    client = gw.openai()
    completion, headers = await chat(
        client, "echo", messages=[{"role": "user", "content": "one two three four"}]
    )
    assert completion.choices[0].message.content == "one two three four"
    assert headers["x-apex-provider"] == "echo"
    started = time.monotonic()
    text, chunks, _ = await stream_text(
        client,
        "echo",
        messages=[{"role": "user", "content": "one two three four"}],
        stream_options={"include_usage": True},
    )
    elapsed = time.monotonic() - started
    assert text == "one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert chunks[-1].usage is not None
    assert elapsed >= 4 * 0.03  # token_delay_ms paces the stream (a lower bound, never flaky)
