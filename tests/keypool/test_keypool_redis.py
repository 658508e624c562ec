"""The Redis ledger as replicas see it: one ledger for all, one round trip per reservation,
TTLs on everything, and an outage that degrades to local state instead of failing callers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from fakes.ports import free_port
from fakes.redis_server import RedisServer
from redis.asyncio import Redis

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, Refusal, Reservation
from apex_ai_proxy.keypool.redis_ledger import GRANTED, RedisLedger
from apex_ai_proxy.keypool.signals import read_signal
from apex_ai_proxy.keypool.state import KeyState


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


async def test_two_replicas_enforce_a_configured_rpm_once_not_twice(redis_ledgers):
    one, two = await redis_ledgers(), await redis_ledgers()
    key = cand("gemini#0|flash", rpm=4)
    # Ten concurrent requests, split across the replicas: the pool serves 4, not 4 per replica.
    results = await asyncio.gather(*(r.reserve([key], 10) for r in [one, two] * 5))
    granted = [r for r in results if isinstance(r, Reservation)]
    assert len(granted) == 4
    assert all(r.backend == "redis" for r in granted)
    assert one.fallbacks == two.fallbacks == 0


async def test_a_state_learned_by_one_replica_keeps_the_other_away(redis_ledgers):
    one, two = await redis_ledgers(), await redis_ledgers()
    now = time.time()
    await one.record("openai#0|gpt", read_signal(401, {}, b"", now, lambda t: t + 86400))
    refused = await two.reserve([cand("openai#0|gpt")], 1)
    assert isinstance(refused, Refusal) and refused.reason == "invalid"
    assert (await two.status("openai#0|gpt")).state is KeyState.INVALID


async def test_every_key_the_ledger_writes_expires(redis_ledgers):
    ledger = await redis_ledgers()
    await ledger.reserve([cand("p#0|m", rpm=5, rpd=50, max_parallel=3)], 10)
    await ledger.record("p#0|m", read_signal(429, {"retry-after": "30"}, b"", time.time(), float))
    raw = Redis.from_url(redis_ledgers.url)
    try:
        keys = [k async for k in raw.scan_iter(match=f"{redis_ledgers.prefix}*")]
        assert len(keys) == 2  # usage and learned state of the one unit
        for key in keys:
            ttl = await raw.pttl(key)
            assert 0 < ttl <= (26 * 3600 + 700) * 1000, (key, ttl)
        assert not any(b"sk-" in k for k in keys)  # unit names, never key material
    finally:
        await raw.aclose()


async def test_a_garbled_stored_state_reads_as_ok(redis_ledgers):
    ledger = await redis_ledgers()
    raw = Redis.from_url(redis_ledgers.url)
    try:
        await raw.hset(
            f"{redis_ledgers.prefix}s:p#0|m",
            mapping={"state": "on-fire", "until": "tomorrow", "recent": "x:y,,:"},
        )
        await raw.hset(
            f"{redis_ledgers.prefix}s:p#1|m", mapping={"state": "invalid", "until": "inf"}
        )
    finally:
        await raw.aclose()
    assert (await ledger.status("p#0|m")).state is KeyState.OK
    assert (await ledger.status("p#1|m")).state is KeyState.OK
    # The script reads the raw value; a refusal still never promises a time past the horizon.
    refused = await ledger.reserve([cand("p#1|m")], 1)
    assert isinstance(refused, Refusal)
    assert refused.retry_at <= time.time() + 26 * 3600
    assert ledger.fallbacks == 0


async def test_absurd_token_counts_stay_exact_in_redis(redis_ledgers):
    """An estimate of 10**20 tokens (a hostile max_tokens) is clamped, not sent to HINCRBY as
    "1e+20", which Redis would refuse, sending every request to the local fallback."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", tpd=10**12)
    first = await ledger.reserve([key], 10**20)
    assert isinstance(first, Reservation) and first.backend == "redis"
    await ledger.settle(first, 10**30)
    assert isinstance(await ledger.reserve([key], 1), Refusal)  # the day's tokens are spent
    assert ledger.fallbacks == 0


async def test_a_reservation_is_one_evalsha(tmp_path):
    """One round trip per check-and-reserve, on a private Redis where nobody else counts."""
    server = await RedisServer(tmp_path / "redis").start()
    ledger = RedisLedger(server.url, "apex-test:")
    admin, marker = server.client(), server.client()
    try:
        candidates = [cand(f"p#{i}|m", rpm=1, rpd=10, tpm=100, max_parallel=2) for i in range(3)]
        await ledger.reserve(candidates, 10)  # loads the script (NOSCRIPT, then SCRIPT LOAD)
        await marker.ping()  # connected before the count starts
        async with admin.monitor() as monitor:
            await ledger.reserve(candidates, 10)
            await marker.echo("end of test")
            sent = []
            while True:  # what clients sent; what the script ran inside Redis is "lua"
                entry = await asyncio.wait_for(monitor.next_command(), 5)
                if entry["command"] == "ECHO end of test":
                    break
                if entry["client_type"] != "lua":
                    sent.append(entry["command"].split(" ", 1)[0])
        assert sent == ["EVALSHA"]
    finally:
        await ledger.close()
        await admin.aclose()
        await marker.aclose()
        await server.stop()


async def test_redis_down_falls_back_to_local_state(caplog):
    """Nothing listens on the port: every call is served from local state, a configured limit
    still holds, the caller never sees an error, and the outage is logged once."""
    ledger = RedisLedger(f"redis://127.0.0.1:{free_port()}", f"apex-test:{uuid.uuid4().hex}:")
    key = cand("p#0|m", rpm=2)
    caplog.set_level(logging.WARNING, logger="apex_ai_proxy")
    try:
        first = await ledger.reserve([key], 10)
        second = await ledger.reserve([key], 10)
        assert isinstance(first, Reservation) and first.backend == "local"
        assert isinstance(second, Reservation)
        assert isinstance(await ledger.reserve([key], 10), Refusal)  # rpm kept locally
        await ledger.settle(first, 3)
        status = await ledger.record("p#0|m", read_signal(401, {}, b"", time.time(), float))
        assert status.state is KeyState.INVALID
        assert ledger.fallbacks >= 4
        warnings = [r for r in caplog.records if "key pool: Redis" in r.getMessage()]
        assert len(warnings) == 1
        assert "127.0.0.1" in warnings[0].getMessage()
    finally:
        await ledger.close()


async def test_a_redis_that_dies_and_returns_is_used_again(tmp_path, caplog):
    server = await RedisServer(tmp_path / "redis").start()
    ledger = RedisLedger(server.url, "apex-test:")
    key = cand("p#0|m", rpm=100)
    caplog.set_level(logging.INFO, logger="apex_ai_proxy")
    try:
        assert (await ledger.reserve([key], 1)).backend == "redis"
        await server.stop()
        # The first reservation took a grant of one more (keypool/grants.py), already counted
        # in Redis: it is served; the next request finds Redis gone.
        held = await ledger.reserve([key], 1)
        assert isinstance(held, Reservation) and held.backend == GRANTED
        during = await ledger.reserve([key], 1)
        assert isinstance(during, Reservation) and during.backend == "local"
        await ledger.settle(during, 1)  # settled where it was made
        await server.start()
        await asyncio.sleep(0.3)  # the first wait before Redis is tried again
        after = await ledger.reserve([key], 1)
        assert isinstance(after, Reservation) and after.backend == "redis"
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        await ledger.close()
        await server.stop()
