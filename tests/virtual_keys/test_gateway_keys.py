"""A virtual key at the gateway: accepted where a gateway token is, refused for a model it may
not use, when expired or revoked; its records carry its name and id."""

from __future__ import annotations

import asyncio
import json
import time

from vk_support import CLIENT, admin_headers, chat, create_key, gateway_config


async def test_virtual_key_is_accepted_like_a_gateway_token(gateway, store_config):
    gw = await gateway(gateway_config(store_config))
    key = (await create_key(gw, name="alice"))["key"]
    assert key.startswith("sk-apex-")
    status, _, body = await chat(gw, key)
    assert status == 200, body
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    payload = {"model": "m1", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with gw.http().post("/v1/messages", json=payload, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    gemini = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with gw.http().post(
        "/v1beta/models/m1:generateContent", json=gemini, headers={"x-goog-api-key": key}
    ) as resp:
        assert resp.status == 200, await resp.text()
    async with gw.http().post(f"/v1beta/models/m1:generateContent?key={key}", json=gemini) as resp:
        assert resp.status == 200, await resp.text()
    # the gateway token still works, a made-up key does not
    assert (await chat(gw, CLIENT))[0] == 200
    assert (await chat(gw, "sk-apex-" + "x" * 43))[0] == 401


async def test_model_outside_the_allowlist_is_403_naming_the_allowed(gateway, store_config):
    gw = await gateway(gateway_config(store_config))
    key = (await create_key(gw, name="bob", models=["m1"]))["key"]
    status, _, body = await chat(gw, key, model="m2")
    assert status == 403
    error = json.loads(body)["error"]
    assert error["code"] == "model_not_allowed"
    assert "m1" in error["message"]
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    payload = {"model": "m2", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with gw.http().post("/v1/messages", json=payload, headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["type"] == "error"  # Anthropic's shape
    assert (await chat(gw, key, model="m1"))[0] == 200


async def test_expired_and_revoked_keys_get_401(gateway, store_config):
    gw = await gateway(gateway_config(store_config))
    expired = await create_key(gw, name="old", expires_at=1.0)
    assert (await chat(gw, expired["key"]))[0] == 401
    live = await create_key(gw, name="live")
    assert (await chat(gw, live["key"]))[0] == 200
    async with gw.http().delete(f"/admin/keys/{live['id']}", headers=admin_headers()) as resp:
        assert resp.status == 200
    status, _, body = await chat(gw, live["key"])
    assert status == 401
    assert json.loads(body)["error"]["code"] == "key_revoked"


async def test_a_key_that_expires_while_in_use_gets_401(gateway, store_config):
    """The guard keeps what it made of a key between cache refreshes: expiry is still checked
    on every request."""
    gw = await gateway(gateway_config(store_config))
    created = await create_key(gw, name="brief", expires_at=time.time() + 1.0)
    assert (await chat(gw, created["key"]))[0] == 200
    await asyncio.sleep(max(created["expires_at"] - time.time(), 0) + 0.05)
    status, _, body = await chat(gw, created["key"])
    assert status == 401
    assert json.loads(body)["error"]["code"] == "key_expired"


async def test_rotated_key_replaces_the_old_one(gateway, store_config):
    gw = await gateway(gateway_config(store_config))
    old = await create_key(gw, name="carol")
    async with gw.http().post(f"/admin/keys/{old['id']}/rotate", headers=admin_headers()) as r:
        new = await r.json()
    assert new["id"] == old["id"] and new["key"] != old["key"]
    assert (await chat(gw, old["key"]))[0] == 401
    assert (await chat(gw, new["key"]))[0] == 200


async def test_records_carry_the_key_name_and_id(gateway, store_config):
    gw = await gateway(gateway_config(store_config))
    created = await create_key(gw, name="dave")
    assert (await chat(gw, created["key"]))[0] == 200
    recorder = gw.app.services.recorder
    await recorder.stop(grace=2.0)
    from apex_ai_proxy.telemetry import query

    db = gw.config.records.sinks[0].path
    rows = query.recent_records(db, limit=10)
    mine = [r for r in rows if r.get("token_name") == "dave"]
    assert mine, rows
    assert mine[0].get("key_id") == created["id"]


async def test_a_reload_keeps_virtual_keys_and_their_limits(gateway, tmp_path):
    import yaml

    config = gateway_config({"backend": "sqlite", "path": str(tmp_path / "k.db")})
    gw = await gateway(config)
    created = await create_key(gw, name="stays", rpm=2)
    assert (await chat(gw, created["key"]))[0] == 200
    config["gateway_tokens"] = ["client-token-after-reload-000"]
    gw.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    async with gw.http().post("/admin/reload", headers=admin_headers()) as resp:
        assert resp.status == 200, await resp.text()
    assert (await chat(gw, created["key"]))[0] == 200  # the new Authenticator knows the key
    assert (await chat(gw, created["key"]))[0] == 429  # the ledger kept the first request
    assert (await chat(gw, CLIENT))[0] == 401


async def test_the_allowlist_governs_counting_and_listing_too(gateway, store_config):
    """Regression (merge review): count_tokens, Gemini countTokens and the model lists ignored a
    key's allowlist; counting spends no budget or limit, so only the allowlist applies."""
    gw = await gateway(gateway_config(store_config))
    key = (await create_key(gw, name="carol", models=["m1"]))["key"]
    http = gw.http()
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    payload = {"model": "m2", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post("/v1/messages/count_tokens", json=payload, headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["type"] == "permission_error"
    async with http.post(
        "/v1beta/models/m2:countTokens",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": key},
    ) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["status"] == "PERMISSION_DENIED"
    async with http.get("/v1/models", headers={"authorization": f"Bearer {key}"}) as resp:
        assert [m["id"] for m in (await resp.json())["data"]] == ["m1"]
    async with http.get("/v1beta/models", headers={"x-goog-api-key": key}) as resp:
        assert [m["name"] for m in (await resp.json())["models"]] == ["models/m1"]
