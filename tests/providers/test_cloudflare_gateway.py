"""`kind: cloudflare` against a fake AI Gateway: paths, the model, and which headers carry what."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cloudflare_fake import FakeGateway

from apex_ai_proxy.config import parse_config

ACCOUNT, GATEWAY = "acct0123", "my-gw"
CF_TOKEN = "cfut-gateway-SECRET-0123456789"
PROVIDER_KEY = "sk-provider-SECRET-987654321"
CLIENT = "client-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    gateway = await FakeGateway().start()
    yield gateway
    await gateway.stop()


def gateway_config(fake: FakeGateway, **extra) -> dict:
    common = {
        "kind": "cloudflare",
        "base_url": fake.base_url,
        "account_id": ACCOUNT,
        "gateway_id": GATEWAY,
        "gateway_token": CF_TOKEN,
    }
    return {
        "gateway_tokens": [CLIENT],
        "providers": {
            "cloudflare": {**common, **extra},
            "cloudflare-anthropic": {**common, "native": "anthropic", **extra},
        },
    }


async def chat(gw, model: str) -> dict:
    async with gw.http().post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {CLIENT}"},
    ) as resp:
        return {"status": resp.status, "body": await resp.json()}


async def test_byok_sends_the_gateway_token_and_no_provider_credential(gateway, fake) -> None:
    gw = await gateway(gateway_config(fake))
    answer = await chat(gw, "gemini-2.0-flash#google-ai-studio")
    assert answer["status"] == 200, answer
    (seen,) = fake.requests
    assert seen.path == f"/v1/{ACCOUNT}/{GATEWAY}/compat/chat/completions"
    assert seen.query == {}
    assert seen.json["model"] == "google-ai-studio/gemini-2.0-flash"
    assert seen.headers["cf-aig-authorization"] == f"Bearer {CF_TOKEN}"
    assert "authorization" not in seen.headers  # the key stored at Cloudflare is used
    assert "x-api-key" not in seen.headers


async def test_keys_from_our_config_go_as_the_provider_expects(gateway, fake) -> None:
    gw = await gateway(gateway_config(fake, api_key=PROVIDER_KEY))
    answer = await chat(gw, "gpt-5.5#openai")
    assert answer["status"] == 200, answer
    seen = fake.requests[-1]
    assert seen.json["model"] == "openai/gpt-5.5"
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert seen.headers["cf-aig-authorization"] == f"Bearer {CF_TOKEN}"


async def test_anthropic_clients_stay_on_the_native_anthropic_path(gateway, fake) -> None:
    gw = await gateway(gateway_config(fake, api_key=PROVIDER_KEY))
    async with gw.http().post(
        "/v1/messages",
        json={
            "model": "claude-sonnet-4-6#anthropic",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": CLIENT, "anthropic-version": "2023-06-01"},
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["content"][0]["text"] == "via anthropic"
    (seen,) = fake.requests
    assert seen.path == f"/v1/{ACCOUNT}/{GATEWAY}/anthropic/v1/messages"
    assert seen.json["model"] == "claude-sonnet-4-6"  # bare: the path names the provider
    assert seen.headers["x-api-key"] == PROVIDER_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["cf-aig-authorization"] == f"Bearer {CF_TOKEN}"
    assert "authorization" not in seen.headers


async def test_a_model_entry_names_provider_and_model_for_the_compat_path(gateway, fake) -> None:
    config = gateway_config(fake)
    config["models"] = {"fast": {"providers": [{"provider": "cloudflare", "model": "groq/llama"}]}}
    gw = await gateway(config)
    assert (await chat(gw, "fast"))["status"] == 200
    assert fake.requests[-1].json["model"] == "groq/llama"


def test_the_gateway_token_is_a_secret_of_the_config(fake) -> None:
    assert CF_TOKEN in parse_config(gateway_config(fake), {}).secrets()


async def test_a_gateway_token_the_gateway_echoes_reaches_no_client_or_record(
    gateway, fake, tmp_path
) -> None:
    config = gateway_config(fake)
    db = tmp_path / "records.db"
    config["records"] = {"raw": True, "sinks": [{"type": "sqlite", "path": str(db)}]}
    gw = await gateway(config)
    fake.fail = (400, f"bad cf-aig-authorization: Bearer {CF_TOKEN}")
    answer = await chat(gw, "gpt-5.5#openai")
    assert answer["status"] == 400
    assert fake.requests, "the request reached the fake"
    assert CF_TOKEN not in str(answer["body"])
    await gw.app.services.recorder.flush()
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("records"))
    assert b"cf-aig-authorization" in written or b"bad cf" in written  # the raw capture exists
    assert CF_TOKEN.encode() not in written


@pytest.mark.parametrize("missing", ["account_id", "gateway_id"])
def test_account_and_gateway_ids_are_required(fake, missing: str) -> None:
    from apex_ai_proxy.config import ConfigError

    config = gateway_config(fake)
    del config["providers"]["cloudflare"][missing]
    with pytest.raises(ConfigError) as err:
        parse_config(config, {})
    assert f"providers.cloudflare.{missing}: required for kind 'cloudflare'" in err.value.problems


def test_gateway_fields_on_another_kind_are_a_problem_not_ignored() -> None:
    from apex_ai_proxy.config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"providers": {"o": {"kind": "openai", "native": "anthropic"}}}, {})
    assert "providers.o.native: only for kind 'cloudflare' (this one is 'openai')" in (
        err.value.problems
    )
