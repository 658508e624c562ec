"""Cooldowns shared between replicas through Redis (`health.backend: redis`).

Two gateways in one process stand for two replicas: each has its own cooldown table, so what one
learns reaches the other only through Redis. These tests use REDIS_URL (default
redis://127.0.0.1:6379) and are skipped when no server answers; each uses its own key prefix.
The outage tests need no Redis at all: they point at a port where none answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.openai_upstream import FakeUpstream, rate_limited
from fakes.ports import free_port
from redis.asyncio import Redis
from redis_support import REDIS_URL, redis_skip_reason

from apex_ai_proxy.health import CooldownTable, HealthConfig, HealthState
from apex_ai_proxy.health.redis_sync import RedisHealthSync

MESSAGES = [{"role": "user", "content": "hi"}]


needs_redis = pytest.mark.skipif(
    redis_skip_reason() is not None, reason=redis_skip_reason() or "Redis answers"
)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"apex-test:health:{uuid.uuid4().hex}:"
    yield prefix
    if redis_skip_reason() is None:
        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def gateway_config(
    limited: FakeUpstream, ok: FakeUpstream, health: dict[str, Any]
) -> dict[str, Any]:
    def provider(fake: FakeUpstream) -> dict[str, Any]:
        return {
            "kind": "openai",
            "base_url": fake.base_url,
            "api_keys": [f"sk-{fake.name}"],
            "timeout": 3.0,
            "connect_timeout": 1.0,
        }

    return {
        "providers": {"limited": provider(limited), "ok": provider(ok)},
        # round-robin starts at `limited` in every gateway: each tries it first unless it
        # knows the key is cooling down.
        "models": {
            "m": {
                "strategy": "round-robin",
                "providers": [{"provider": "limited"}, {"provider": "ok"}],
            }
        },
        "retry": {"cooldown_max_s": 300},
        "health": health,
    }


async def ask(gw) -> str:
    raw = await gw.openai().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return raw.headers["x-apex-provider"]


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def cooling(gw, unit: str) -> bool:
    return not gw.app.services.health.is_available(unit, time.monotonic())


@needs_redis
async def test_two_gateways_sharing_a_redis_see_each_others_cooldowns(
    gateway, fake_upstream, prefix
):
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    health = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    first = await gateway(gateway_config(limited, ok, health))
    second = await gateway(gateway_config(limited, ok, health))

    assert await ask(first) == "ok"
    assert len(limited.requests) == 1
    await until(lambda: cooling(second, "limited#0"))
    unit = second.app.services.health.unit("limited#0")
    assert unit.rate_limited and unit.failures == 1
    assert 55 < unit.cooldown_until - time.monotonic() <= 60

    for _ in range(3):
        assert await ask(second) == "ok"
    assert len(limited.requests) == 1, "the second gateway tried the key the first saw limited"


@needs_redis
async def test_a_gateway_that_starts_later_catches_up_on_running_cooldowns(
    gateway, fake_upstream, prefix
):
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    health = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    first = await gateway(gateway_config(limited, ok, health))
    assert await ask(first) == "ok"
    raw = Redis.from_url(REDIS_URL)
    try:  # published: the cooldown is in the hash a starting gateway reads
        for _ in range(250):
            if await raw.hexists(prefix + "units", "limited#0"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the cooldown never reached Redis")
    finally:
        await raw.aclose()

    later = await gateway(gateway_config(limited, ok, health))
    await until(lambda: cooling(later, "limited#0"))
    assert await ask(later) == "ok"
    assert len(limited.requests) == 1


def _health() -> HealthState:
    return HealthState(1.0, 300.0, 3600.0, CooldownTable(["a#0", "b#0"]))


@contextlib.asynccontextmanager
async def replicas(states: list[HealthState], prefix: str) -> AsyncIterator[list[RedisHealthSync]]:
    """Each state as one replica's, sharing cooldowns through the Redis at REDIS_URL."""
    config = HealthConfig(backend="redis", redis_url=REDIS_URL, key_prefix=prefix)
    syncs = [RedisHealthSync(state, config) for state in states]
    for sync in syncs:
        sync.start()
    try:
        yield syncs
    finally:
        for sync in syncs:
            await sync.close()


@needs_redis
async def test_a_success_on_one_replica_clears_the_cooldown_on_the_other(prefix):
    one, two = _health(), _health()
    async with replicas([one, two], prefix) as syncs:
        one.on_failure("a#0", retry_after=30, rate_limited=True)
        await until(lambda: not two.is_available("a#0", time.monotonic()))
        assert two.is_available("b#0", time.monotonic())
        one.on_success("a#0", 0.1)
        await until(lambda: two.is_available("a#0", time.monotonic()))
        assert two.unit("a#0").failures == 0 and not two.unit("a#0").rate_limited
        # A change applied from Redis is not published again (no echo back to its author).
        assert not syncs[1]._pending


async def test_with_redis_down_requests_succeed_and_cooldowns_work_locally(
    gateway, fake_upstream, prefix, caplog
):
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    nowhere = f"redis://127.0.0.1:{free_port()}"
    health = {"backend": "redis", "redis_url": nowhere, "key_prefix": prefix}
    caplog.set_level(logging.WARNING, logger="apex_ai_proxy")
    gw = await gateway(gateway_config(limited, ok, health))

    for _ in range(5):
        assert await ask(gw) == "ok"
    assert len(limited.requests) == 1, "the local cooldown must hold without Redis"
    await until(lambda: any("Redis" in r.getMessage() for r in caplog.records))
    await asyncio.sleep(0.2)
    warnings = [r for r in caplog.records if "is not answering" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


async def test_a_redis_that_never_answers_does_not_hold_up_a_request(
    gateway, fake_upstream, prefix
):
    """A server that accepts the connection and then says nothing: every Redis command waits
    for its 5 s timeout. The request must not wait with it."""
    received = bytearray()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.extend(data)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        limited = await fake_upstream("limited")
        limited.default = rate_limited(retry_after=60)
        ok = await fake_upstream("ok")
        health = {
            "backend": "redis",
            "redis_url": f"redis://127.0.0.1:{port}",
            "key_prefix": prefix,
        }
        gw = await gateway(gateway_config(limited, ok, health))
        await until(lambda: bool(received))  # the gateway is talking to the silent server
        # Well within the 5 s every Redis command would wait: nothing on the path waits.
        assert await asyncio.wait_for(ask(gw), 2.0) == "ok"
        assert await asyncio.wait_for(ask(gw), 2.0) == "ok"
        assert len(limited.requests) == 1
    finally:
        server.close()


def test_a_health_section_with_a_bad_redis_url_is_reported_with_its_path(tmp_path):
    from apex_ai_proxy.config import ConfigError, load_config_file

    path = tmp_path / "apex.yaml"
    path.write_text("health: {backend: redis, redis_url: 'http://cache:6379'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config_file(path, {})
    assert any(p.startswith("health.redis_url") for p in err.value.problems), err.value.problems
    assert "redis://" in str(err.value)
