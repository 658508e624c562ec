"""Where a virtual key reaches beyond chat: stored responses belong to the key (by id, so they
survive a rotation) and passthrough, which has no allowlist, limits or budget, refuses it."""

from __future__ import annotations

from vk_support import admin_headers, create_key, gateway_config


async def create_response(gw, key: str) -> tuple[int, dict]:
    body = {"model": "m1", "input": "hello", "store": True}
    headers = {"authorization": f"Bearer {key}"}
    async with gw.http().post("/v1/responses", json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def get_response(gw, key: str, rid: str) -> int:
    headers = {"authorization": f"Bearer {key}"}
    async with gw.http().get(f"/v1/responses/{rid}", headers=headers) as resp:
        return resp.status


async def test_stored_responses_belong_to_the_key_through_a_rotation(gateway, tmp_path):
    config = gateway_config({"backend": "sqlite", "path": str(tmp_path / "k.db")})
    config["responses_store"] = {"backend": "sqlite", "path": str(tmp_path / "responses.db")}
    gw = await gateway(config)
    mine = await create_key(gw, name="mine")
    other = await create_key(gw, name="other")
    status, created = await create_response(gw, mine["key"])
    assert status == 200, created
    assert await get_response(gw, mine["key"], created["id"]) == 200
    assert await get_response(gw, other["key"], created["id"]) == 404
    async with gw.http().post(f"/admin/keys/{mine['id']}/rotate", headers=admin_headers()) as r:
        rotated = (await r.json())["key"]
    assert await get_response(gw, rotated, created["id"]) == 200


async def test_passthrough_refuses_a_virtual_key(gateway, tmp_path):
    config = gateway_config({"backend": "sqlite", "path": str(tmp_path / "k.db")})
    config["passthrough"] = {
        "enabled": True,
        "allow": [{"host": "127.0.0.1", "allow_http": True, "allow_private": True}],
    }
    gw = await gateway(config)
    key = (await create_key(gw, name="pt"))["key"]
    headers = {
        "X-APEX-AI-PROXY-PROVIDER": "http://127.0.0.1:9/v1",
        "X-APEX-AI-PROXY-TOKEN": key,
        "authorization": "Bearer upstream-key",
    }
    body = {"model": "x", "messages": []}
    async with gw.http().post("/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 403
        assert "Virtual keys cannot use passthrough" in (await resp.json())["error"]["message"]
