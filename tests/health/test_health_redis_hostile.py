"""Probe of the shared cooldowns: a state published by a replica whose clock runs days ahead
(or by anything else that can PUBLISH on the channel) took a key out for as long as it said:
days, or forever (`"inf"`), on every replica. A remote cooldown can last no longer than the
longest this gateway would set itself; a state that is not a finite time is ignored."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import Redis
from test_health_redis import REDIS_URL, cooling, gateway_config, needs_redis, until


@pytest.fixture
async def channel_prefix() -> AsyncIterator[str]:
    prefix = f"apex-test:health:{uuid.uuid4().hex}:"
    yield prefix
    if needs_redis.args[0] is False:  # a Redis answered: remove what the test wrote
        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def publish(prefix: str, end: object, unit: str = "limited#0", failures: int = 1) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        state = {"o": "replica-with-a-wrong-clock", "k": unit, "u": end, "f": failures, "r": True}
        await client.publish(prefix + "events", orjson.dumps(state))
    finally:
        await client.aclose()


@needs_redis
@pytest.mark.parametrize("days_ahead", [1, 10_000])
async def test_a_cooldown_from_a_replica_with_a_clock_days_ahead_is_capped(
    gateway, fake_upstream, channel_prefix, days_ahead: int
) -> None:
    prefix = channel_prefix
    limited, ok = await fake_upstream("limited"), await fake_upstream("ok")
    health = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    gw = await gateway(gateway_config(limited, ok, health))
    sync = gw.app.services.health_sync
    await until(lambda: sync.reachable and sync._tasks and not sync._down)
    longest = gw.app.services.health.longest_cooldown_s
    for _ in range(50):  # the subscriber may not be listening yet: publish until it applies
        await publish(prefix, time.time() + days_ahead * 86400.0)
        try:
            await until(lambda: cooling(gw, "limited#0"), timeout=0.1)
            break
        except AssertionError:
            continue
    assert cooling(gw, "limited#0")
    left = gw.app.services.health.unit("limited#0").cooldown_until - time.monotonic()
    assert left <= longest + 1.0, f"cooled down for {left / 86400:.1f} days"
    assert gw.app.services.health.is_available("limited#0", time.monotonic() + longest + 1.0)


@needs_redis
@pytest.mark.parametrize("end", ["inf", "nan", 1e300])
async def test_a_state_whose_end_is_not_a_sane_time_does_not_cool_a_key_forever(
    gateway, fake_upstream, channel_prefix, end: object
) -> None:
    prefix = channel_prefix
    limited, ok = await fake_upstream("limited"), await fake_upstream("ok")
    health = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    gw = await gateway(gateway_config(limited, ok, health))
    longest = gw.app.services.health.longest_cooldown_s
    for _ in range(50):  # until the subscriber listens: a sane state for `ok` marks the point
        await publish(prefix, end)
        await publish(prefix, time.time() + 5.0, unit="ok#0")
        try:
            await until(lambda: cooling(gw, "ok#0"), timeout=0.1)
            break
        except AssertionError:
            continue
    assert cooling(gw, "ok#0")  # the subscriber listens now: once more, in a known order
    await publish(prefix, end)
    await publish(prefix, time.time() + 5.0, unit="ok#0", failures=7)
    await until(lambda: gw.app.services.health.unit("ok#0").failures == 7)
    later = time.monotonic() + longest + 1.0
    assert gw.app.services.health.is_available("limited#0", later), end
