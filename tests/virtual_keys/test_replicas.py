"""Two gateways sharing one key store and one Redis: limits, budgets and revocations hold
across them (the issue's replica tests)."""

from __future__ import annotations

import asyncio
import json
import time

from vk_support import admin_headers, chat, create_key, gateway_config

TTL = 0.3


async def two_replicas(gateway, store_config, redis_state, **virtual):
    config = gateway_config(store_config, redis_state, cache_ttl_s=TTL, **virtual)
    return await gateway(config), await gateway(config)


async def known_everywhere(*gateways, key: str) -> None:
    """Wait (a few TTLs at most) until every replica has read the new key."""
    deadline = time.monotonic() + 20 * TTL
    for gw in gateways:
        while (await chat(gw, key))[0] == 401:
            assert time.monotonic() < deadline, "a replica never learned the key"
            await asyncio.sleep(TTL / 3)


async def test_rpm_of_a_virtual_key_holds_across_two_replicas(gateway, store_config, redis_state):
    a, b = await two_replicas(gateway, store_config, redis_state)
    created = await create_key(a, name="rpm-key", rpm=4)
    key = created["key"]
    await known_everywhere(a, b, key=key)  # two requests spent: one on each replica
    statuses = [(await chat(gw, key))[0] for gw in (a, b, a, b)]
    assert statuses == [200, 200, 429, 429]
    status, headers, body = await chat(b, key)
    assert status == 429
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(headers["retry-after"]) <= 70
    assert headers["x-ratelimit-limit-requests"] == "4"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")


async def test_max_parallel_is_refused_at_once(gateway, store_config, redis_state):
    config = gateway_config(store_config, redis_state)
    config["providers"]["slow"] = {"kind": "echo", "token_delay_ms": 100}
    config["models"]["slow"] = {"providers": [{"provider": "slow", "model": "echo"}]}
    gw = await gateway(config)
    key = (await create_key(gw, name="par", max_parallel=1))["key"]
    words = [{"role": "user", "content": "slow " * 15}]  # 15 tokens, 100 ms apart
    first = asyncio.create_task(chat(gw, key, model="slow", stream=True, messages=words))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    status, headers, _ = await chat(gw, key, model="slow")
    assert status == 429 and time.monotonic() - started < 1.0
    assert headers["x-ratelimit-limit-parallel"] == "1"
    assert (await first)[0] == 200
    assert (await chat(gw, key))[0] == 200  # the slot came back when the stream ended


async def test_budget_spent_by_streams_blocks_the_next_request(gateway, store_config, redis_state):
    a, b = await two_replicas(gateway, store_config, redis_state)
    created = await create_key(a, name="budget", budget=5, budget_period="1d")
    key = created["key"]
    await known_everywhere(b, key=key)  # a non-stream request on b: it costs dollars too
    status, _, body = await chat(a, key, stream=True, messages=long_messages())
    assert status == 200 and "[DONE]" in body  # the stream that crosses the budget is not cut
    status, headers, body = await chat(a, key, stream=True)
    assert status == 429
    error = json.loads(body)["error"]
    assert error["code"] == "insufficient_quota"
    assert int(headers["retry-after"]) <= 86_400
    deadline = time.monotonic() + 20 * TTL  # the other replica: within its TTL
    while (await chat(b, key))[0] != 429:
        assert time.monotonic() < deadline, "the other replica never saw the spend"
        await asyncio.sleep(TTL / 3)
    # both replicas' charges reach the store: each writes behind, b's may still be in flight
    deadline = time.monotonic() + 20 * TTL
    while True:
        async with a.http().get(f"/admin/keys/{created['id']}/spend", headers=admin_headers()) as r:
            spend = await r.json()
        if spend["requests"] >= 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(TTL / 3)
    assert spend["usd"] >= 5 and spend["requests"] >= 2


def long_messages() -> list[dict]:
    return [{"role": "user", "content": "spend " * 20}]


async def test_revoked_key_is_refused_on_every_replica_within_ttl(
    gateway, store_config, redis_state
):
    a, b = await two_replicas(gateway, store_config, redis_state)
    created = await create_key(a, name="revoke-me")
    await known_everywhere(a, b, key=created["key"])
    async with a.http().delete(f"/admin/keys/{created['id']}", headers=admin_headers()) as r:
        assert r.status == 200
    revoked_at = time.monotonic()
    assert (await chat(a, created["key"]))[0] == 401  # the replica that revoked: at once
    while (await chat(b, created["key"]))[0] != 401:
        await asyncio.sleep(0.02)
    # one TTL, plus one store read and the loop's wake-up on a loaded machine
    assert time.monotonic() - revoked_at < TTL + 1.0
