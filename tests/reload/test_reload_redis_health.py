"""After a reload, cooldowns still travel between replicas through Redis, for keys the reload
added too: the sync follows the new health state (publishes its changes, applies remote ones).
Uses REDIS_URL (default redis://127.0.0.1:6379); skipped when no server answers."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
import redis
from fakes.openai_upstream import rate_limited
from redis.asyncio import Redis
from reload_support import ADMIN, CLIENT, SECRETS, config, provider, rewrite

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"


def _redis_answers() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis reachable")


async def test_a_key_added_by_reload_shares_its_cooldown_through_redis(gateway, fake_upstream):
    first_key, second_key, _ = SECRETS
    ok, added = await fake_upstream("ok"), await fake_upstream("added")
    added.default = rate_limited(retry_after=60)
    prefix = f"apex-test:reload:{uuid.uuid4().hex}:"
    health = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    before = config({"ok": provider(ok, first_key)}, {"m": ["ok"]}, health=health)
    after = config(
        {"added": provider(added, second_key), "ok": provider(ok, first_key)},
        {"m": ["added", "ok"]},
        health=health,
    )
    replicas = [await gateway(before), await gateway(before)]
    for gw in replicas:
        rewrite(gw.config_path, after)
        async with gw.http().post(
            "/admin/reload", headers={"authorization": f"Bearer {ADMIN}"}
        ) as resp:
            assert resp.status == 200, await resp.text()
    one, two = replicas
    reply = await one.openai(CLIENT).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content.startswith("ok ")
    assert [r.key for r in added.requests] == [second_key]
    deadline = time.monotonic() + 5
    while two.app.services.health.is_available("added#0", time.monotonic()):
        assert time.monotonic() < deadline, "the cooldown of the added key never reached two"
        await asyncio.sleep(0.02)
    await two.openai(CLIENT).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert len(added.requests) == 1, "the second replica called the key the first saw limited"
    raw = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
    finally:
        await raw.aclose()
