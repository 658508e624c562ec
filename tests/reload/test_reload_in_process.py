"""Reloading an in-process gateway: POST /admin/reload answers what changed or the problems,
key state stays with the keys that stay, removed models are gone."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from fakes.openai_upstream import rate_limited
from reload_support import (
    ADMIN,
    CLIENT,
    SECRETS,
    check_problems,
    config,
    no_secret_in,
    provider,
    rewrite,
)

BIN = Path(sys.executable).parent / "apex-ai-proxy"
FIRST, SECOND, THIRD = SECRETS


async def admin_reload(gw, token: str = ADMIN) -> tuple[int, Any, str]:
    headers = {"authorization": f"Bearer {token}"}
    async with gw.http().post("/admin/reload", headers=headers) as resp:
        text = await resp.text()
        return resp.status, await resp.json(content_type=None), text


async def chat(gw, model: str) -> Any:
    return await gw.openai(CLIENT).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )


async def test_admin_reload_answers_what_changed_by_name(gateway, fake_upstream):
    a, b = await fake_upstream("a"), await fake_upstream("b")
    gw = await gateway(config({"a": provider(a, FIRST, SECOND)}, {"m": ["a"]}))
    rewrite(
        gw.config_path,
        config({"a": provider(a, SECOND), "b": provider(b, THIRD)}, {"m2": ["b"], "m": ["a"]}),
    )
    status, body, text = await admin_reload(gw)
    assert status == 200, body
    changes = body["changes"]
    assert changes["providers_added"] == ["b"]
    assert changes["models_added"] == ["m2"]
    assert changes["providers_changed"] == ["a"]
    # FIRST (a#0) is gone; SECOND moved from a#1 to a#0: the same key, neither added nor removed.
    assert changes["keys_removed"] == ["a#0"]
    assert changes["keys_added"] == ["b#0"]
    no_secret_in(text)
    reply = await chat(gw, "m2")
    assert reply.choices[0].message.content.startswith("b ")
    assert b.requests[-1].key == THIRD


async def test_admin_reload_refuses_a_bad_config_with_checks_problems(
    gateway, fake_upstream, caplog
):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": provider(a, FIRST)}, {"m": ["a"]}))
    bad = config({"a": provider(a, FIRST)}, {"m": ["a", "azur"]}, retry={"max_attempts": 0})
    bad["providers"]["a"]["api_keys"] = [SECOND, "${RELOAD_TEST_SURELY_UNSET_VAR}"]
    rewrite(gw.config_path, bad)
    with caplog.at_level(logging.ERROR, logger="apex_ai_proxy"):
        status, body, text = await admin_reload(gw)
    assert status == 400, body
    expected = check_problems(BIN, gw.config_path)
    assert body["problems"] == [line.strip() for line in expected[1:]]
    assert any("unknown provider 'azur'" in p for p in body["problems"])
    assert expected[0] in body["error"]["message"]
    logged = [r.getMessage() for r in caplog.records]
    assert all(line in logged for line in expected), logged
    no_secret_in(text)
    no_secret_in("\n".join(logged))
    # The old config keeps serving.
    reply = await chat(gw, "m")
    assert reply.choices[0].message.content.startswith("a ")
    assert a.requests[-1].key == FIRST


async def test_admin_reload_is_403_for_a_client_token(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": provider(a, FIRST)}, {"m": ["a"]}))
    rewrite(gw.config_path, config({"a": provider(a, FIRST)}, {"other": ["a"]}))
    status, body, text = await admin_reload(gw, CLIENT)
    assert status == 403, body
    no_secret_in(text)
    await chat(gw, "m")  # not reloaded: m is still served


async def test_a_removed_model_is_404_after_reload(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": provider(a, FIRST)}, {"m": ["a"], "gone": ["a"]}))
    await chat(gw, "gone")
    rewrite(gw.config_path, config({"a": provider(a, FIRST)}, {"m": ["a"]}))
    status, body, _ = await admin_reload(gw)
    assert status == 200 and body["changes"]["models_removed"] == ["gone"], body
    with pytest.raises(openai.NotFoundError) as caught:
        await chat(gw, "gone")
    assert "gone" in str(caught.value)
    await chat(gw, "m")


async def test_a_cooled_down_key_stays_cooled_after_a_reload_that_keeps_it(gateway, fake_upstream):
    limited, ok = await fake_upstream("limited"), await fake_upstream("ok")
    limited.default = rate_limited(retry_after=60)
    gw = await gateway(
        config(
            {"limited": provider(limited, FIRST), "ok": provider(ok, THIRD)},
            {"m": ["limited", "ok"]},
        )  # fmt: skip
    )
    await chat(gw, "m")  # limited#0 answers 429 (60 s), ok serves
    assert [r.key for r in limited.requests] == [FIRST]
    # The kept key moves to limited#1 behind a new key: it is still the same unit.
    rewrite(
        gw.config_path,
        config(
            {"limited": provider(limited, SECOND, FIRST), "ok": provider(ok, THIRD)},
            {"m": ["limited", "ok"]},
        ),  # fmt: skip
    )
    status, body, _ = await admin_reload(gw)
    assert status == 200, body
    assert body["changes"]["keys_added"] == ["limited#0"] and not body["changes"]["keys_removed"]
    for _ in range(4):
        reply = await chat(gw, "m")
        assert reply.choices[0].message.content.startswith("ok ")
    # The new key was tried once (and cooled down); the kept key was never called again.
    assert [r.key for r in limited.requests] == [FIRST, SECOND]


async def test_a_removed_key_loses_its_state(gateway, fake_upstream):
    limited, ok = await fake_upstream("limited"), await fake_upstream("ok")
    limited.default = rate_limited(retry_after=60)
    providers = {"limited": provider(limited, FIRST), "ok": provider(ok, THIRD)}
    gw = await gateway(config(providers, {"m": ["limited", "ok"]}))
    await chat(gw, "m")
    assert not gw.app.services.health.is_available("limited#0", _now())
    rewrite(gw.config_path, config({"ok": provider(ok, THIRD)}, {"m": ["ok"]}))
    assert (await admin_reload(gw))[0] == 200
    # Back again (same name, same secret): a new unit, not the old cooldown.
    rewrite(gw.config_path, config(providers, {"m": ["limited", "ok"]}))
    assert (await admin_reload(gw))[0] == 200
    assert gw.app.services.health.is_available("limited#0", _now())


def _now() -> float:
    import time

    return time.monotonic()


async def test_rotated_gateway_tokens_apply_to_the_next_request(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": provider(a, FIRST)}, {"m": ["a"]}))
    rotated = config({"a": provider(a, FIRST)}, {"m": ["a"]})
    rotated["gateway_tokens"] = ["client-token-rotated-9876543210"]
    rewrite(gw.config_path, rotated)
    status, body, _ = await admin_reload(gw)
    assert status == 200 and body["changes"]["other_changed"] == ["gateway_tokens"], body
    with pytest.raises(openai.AuthenticationError):
        await chat(gw, "m")
    reply = await gw.openai("client-token-rotated-9876543210").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content.startswith("a ")
