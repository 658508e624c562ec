"""Grants (keypool/grants.py): a replica serves some requests from quota it reserved in Redis
beside an earlier one. They must never let replicas exceed a limit, must give back what they did
not serve, and must vanish near a limit and when the unit is learned to be out."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.grants import GRANT_MAX, GRANT_S
from apex_ai_proxy.keypool.ledger import Candidate, Refusal, Reservation
from apex_ai_proxy.keypool.redis_ledger import GRANTED
from apex_ai_proxy.keypool.signals import read_signal


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


async def counted(redis_ledgers, unit: str) -> tuple[int, int]:
    """(requests, tokens) Redis counts for the unit's live minute buckets."""
    raw = Redis.from_url(redis_ledgers.url)
    try:
        usage = await raw.hgetall(f"{redis_ledgers.prefix}u:{unit}")
    finally:
        await raw.aclose()
    requests = sum(int(v) for k, v in usage.items() if k.startswith(b"m:"))
    tokens = sum(int(v) for k, v in usage.items() if k.startswith(b"t:"))
    return requests, tokens


async def test_grants_never_let_two_replicas_exceed_a_limit_and_fill_it_exactly(redis_ledgers):
    """Two replicas hammer one key of rpm=200: never more than 200 served; once the grants
    have been refunded, further rounds fill the minute to exactly 200."""
    one, two = await redis_ledgers(), await redis_ledgers()
    key = cand("openai#0|gpt", rpm=200)
    served = 0
    for _ in range(5):
        results = await asyncio.gather(*(r.reserve([key], 10) for r in [one, two] * 150))
        served += sum(isinstance(r, Reservation) for r in results)
        assert served <= 200
        if served == 200:
            break
        await asyncio.sleep(GRANT_S + 0.1)  # what the grants held goes back
    assert served == 200
    await asyncio.sleep(GRANT_S + 0.1)
    assert (await counted(redis_ledgers, "openai#0|gpt"))[0] == 200


async def test_a_grant_serves_without_a_round_trip_and_gives_back_the_rest(redis_ledgers):
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=100_000, tpm=10**9)
    granted = []
    for _ in range(40):
        r = await ledger.reserve([key], 7)
        assert isinstance(r, Reservation)
        granted.append(r.backend)
    # The grants double while they run out: 1, 3, 7, 15 … requests beside a reservation.
    assert granted.count(GRANTED) >= 20, granted
    assert granted[0] == "redis"
    await asyncio.sleep(GRANT_S + 0.1)
    assert await counted(redis_ledgers, "p#0|m") == (40, 40 * 7)


async def test_grants_grow_no_larger_than_their_cap(redis_ledgers):
    """Refills are asked for when half a grant is served and add to what is left: what one
    process holds unserved stays below two whole grants, however busy the unit."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=10**9)
    most = 0
    for i in range(4 * GRANT_MAX):
        await ledger.reserve([key], 1)
        if i % 3 == 0:
            await asyncio.sleep(0)  # let refills land
        held = ledger.grants.held.get("p#0|m")
        most = max(most, held.requests if held else 0)
    assert GRANT_MAX // 2 <= most <= 2 * (GRANT_MAX + 1)


async def test_settled_usage_of_granted_requests_is_what_redis_counts(redis_ledgers):
    """Served from a grant, settled with the real count (more, less, or never sent): after the
    refund Redis holds exactly the real requests and tokens."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=100_000, tpm=10**9)
    first = await ledger.reserve([key], 100)
    await ledger.settle(first, 30)
    real_requests, real_tokens = 1, 30
    for i in range(12):
        r = await ledger.reserve([key], 100)
        used = (None, 250, 0, 99)[i % 4]
        await ledger.settle(r, used)
        if used is not None:
            real_requests, real_tokens = real_requests + 1, real_tokens + used
    await asyncio.sleep(GRANT_S + 0.1)
    assert await counted(redis_ledgers, "p#0|m") == (real_requests, real_tokens)


async def test_near_a_limit_every_request_goes_to_redis(redis_ledgers):
    """rpm=8: a grant may take an eighth of what is left, which is never a whole request."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=8)
    results = [await ledger.reserve([key], 1) for _ in range(9)]
    assert [r.backend for r in results[:8]] == ["redis"] * 8
    assert isinstance(results[8], Refusal)


async def test_max_parallel_units_are_never_granted(redis_ledgers):
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=100_000, max_parallel=50)
    results = [await ledger.reserve([key], 1) for _ in range(20)]
    assert all(r.backend == "redis" for r in results)


async def test_a_429_learned_here_drops_the_grant_at_once(redis_ledgers):
    """A grant must not keep a key in use that this process has just seen answer 429."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=100_000)
    backends = []
    for _ in range(20):  # until grants are held, a refill perhaps on its way
        backends.append((await ledger.reserve([key], 1)).backend)
        await asyncio.sleep(0.002)
    assert GRANTED in backends
    await ledger.record("p#0|m", read_signal(429, {"retry-after": "30"}, b"", time.time(), float))
    for _ in range(10):  # a refill asked for before the 429 was learned is given back
        refused = await ledger.reserve([key], 1)
        assert isinstance(refused, Refusal) and refused.reason == "rate_limited"
        await asyncio.sleep(0.002)
    assert "p#0|m" not in ledger.grants.held


async def test_reserve_nowait_serves_only_from_a_grant(redis_ledgers):
    """reserve_nowait (a virtual key's path, no coroutine): None while no grant has room, then
    the grant's reservations, which Redis counts exactly as reserve's once settled and refunded."""
    ledger = await redis_ledgers()
    key = cand("p#0|m", rpm=100_000, tpm=10**9)
    assert ledger.reserve_nowait(key, 7) is None  # nothing held yet: reserve instead
    reservations = []
    for _ in range(30):
        r = ledger.reserve_nowait(key, 7)
        if r is None:
            r = await ledger.reserve([key], 7)
        else:
            assert r.backend == GRANTED and r.tokens == 7
        reservations.append(r)
        await asyncio.sleep(0.002)  # let refills land
    assert sum(r.backend == GRANTED for r in reservations) >= 15
    for r in reservations:
        await ledger.settle(r, 5)
    await asyncio.sleep(GRANT_S + 0.1)
    assert await counted(redis_ledgers, "p#0|m") == (30, 30 * 5)
    slots = cand("p#0|slots", rpm=100_000, max_parallel=5)  # never granted
    assert isinstance(await ledger.reserve([slots], 1), Reservation)
    assert ledger.reserve_nowait(slots, 1) is None
