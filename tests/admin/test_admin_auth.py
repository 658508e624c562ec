"""The admin API takes admin tokens only: off without them, 403 for a client's token, 401 for
none or a wrong one; and its config view masks every secret."""

from __future__ import annotations

from typing import Any

import pytest

from apex_ai_proxy.config import ConfigError, parse_config

CLIENT = "client-token-0123456789"
ADMIN = "admin-token-abcdefghij"
PROVIDER_KEY = "sk-provider-secret-key-42"


def config(admin_tokens: list[str]) -> dict[str, Any]:
    return {
        "gateway_tokens": [CLIENT],
        "admin_tokens": admin_tokens,
        "providers": {"up": {"kind": "echo", "api_keys": [PROVIDER_KEY]}},
        "models": {"m": {"providers": [{"provider": "up", "model": "echo"}]}},
    }


async def get(gw, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    async with gw.http().get(path, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_admin_api_is_off_without_admin_tokens(gateway):
    gw = await gateway(config([]))
    status, body = await get(gw, "/admin/config", CLIENT)
    assert status == 404
    assert body["error"]["code"] == "admin_off"


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("wrong-token", 401), (CLIENT, 403), (ADMIN, 200)],
    ids=["none", "wrong", "client", "admin"],
)
async def test_admin_api_refuses_client_tokens(gateway, token, status):
    gw = await gateway(config([ADMIN]))
    got, body = await get(gw, "/admin/config", token)
    assert got == status, body
    if status != 200:
        assert "error" in body and ADMIN not in str(body)


async def test_an_admin_token_is_no_client_token(gateway):
    gw = await gateway(config([ADMIN]))
    client = gw.openai(ADMIN)
    with pytest.raises(Exception) as caught:
        await client.models.list()
    assert getattr(caught.value, "status_code", None) == 401


async def test_config_view_masks_every_secret(gateway):
    gw = await gateway(config([ADMIN]))
    status, body = await get(gw, "/admin/config", ADMIN)
    assert status == 200
    text = str(body)
    for secret in (CLIENT, ADMIN, PROVIDER_KEY):
        assert secret not in text
    assert body["config"]["models"]["m"]["providers"][0]["provider"] == "up"
    assert "[REDACTED]" in text


def test_a_token_cannot_be_both_client_and_admin():
    with pytest.raises(ConfigError) as caught:
        parse_config(config([CLIENT]), env={})
    assert "admin_tokens" in str(caught.value)
    assert CLIENT not in str(caught.value)
