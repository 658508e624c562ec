"""The ledger contract, run on both backends: configured limits, all-or-nothing reservations,
settling real usage, learned states. The Redis runs use the server's clock, so the tests only
ever wait a fraction of a second and check the promised times, never sleep for a minute."""

from __future__ import annotations

import asyncio
import time

import pytest

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, Refusal, Reservation
from apex_ai_proxy.keypool.limits import BUCKET_S, MINUTE_S, next_daily_reset
from apex_ai_proxy.keypool.signals import read_signal
from apex_ai_proxy.keypool.state import KeyState, Policy


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


def utc_reset(now: float) -> float:
    return next_daily_reset(now, "UTC")


async def test_a_configured_rpm_is_enforced_and_says_when_it_frees(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", rpm=3)
    for _ in range(3):
        assert isinstance(await ledger.reserve([key], 10), Reservation)
    start = time.time()
    refused = await ledger.reserve([key], 10)
    assert isinstance(refused, Refusal) and refused.reason == "rpm"
    # Frees when the first request's bucket leaves the minute: 60 to 65 s from now.
    assert start + MINUTE_S - 1 <= refused.retry_at <= start + MINUTE_S + BUCKET_S + 1


async def test_the_next_candidate_serves_when_the_first_is_spent(make_ledger):
    ledger = await make_ledger()
    a, b = cand("p#0|m", rpm=1), cand("p#1|m", rpm=1)
    first = await ledger.reserve([a, b], 1)
    second = await ledger.reserve([a, b], 1)
    assert (first.unit, second.unit) == ("p#0|m", "p#1|m")
    assert isinstance(await ledger.reserve([a, b], 1), Refusal)


async def test_a_refused_reservation_counts_in_no_bucket(make_ledger):
    """All or nothing: a request refused by its daily limit is not counted in the minute."""
    ledger = await make_ledger()
    daily = cand("p#0|m", rpm=3, rpd=2)
    assert isinstance(await ledger.reserve([daily], 1), Reservation)
    assert isinstance(await ledger.reserve([daily], 1), Reservation)
    refused = await ledger.reserve([daily], 1)
    assert isinstance(refused, Refusal) and refused.reason == "rpd"
    assert refused.retry_at == pytest.approx(utc_reset(time.time()), abs=2)
    minute_only = cand("p#0|m", rpm=3)  # same unit: two requests so far, not three
    assert isinstance(await ledger.reserve([minute_only], 1), Reservation)
    assert isinstance(await ledger.reserve([minute_only], 1), Refusal)


async def test_settling_replaces_the_token_estimate_with_real_usage(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", tpm=1000)
    first = await ledger.reserve([key], 600)
    refused = await ledger.reserve([key], 600)
    assert isinstance(refused, Refusal) and refused.reason == "tpm"
    await ledger.settle(first, 100)  # the answer used far less than estimated
    assert isinstance(await ledger.reserve([key], 600), Reservation)
    assert isinstance(await ledger.reserve([key], 600), Refusal)  # 700 used: 600 more is too much


async def test_a_request_never_sent_is_refunded(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", rpm=1)
    reservation = await ledger.reserve([key], 5)
    await ledger.settle(reservation, None)
    assert isinstance(await ledger.reserve([key], 5), Reservation)


async def test_max_parallel_frees_a_slot_when_a_request_settles(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", max_parallel=2)
    one = await ledger.reserve([key], 1)
    await ledger.reserve([key], 1)
    refused = await ledger.reserve([key], 1)
    assert isinstance(refused, Refusal) and refused.reason == "max_parallel"
    await ledger.settle(one, 1)
    assert isinstance(await ledger.reserve([key], 1), Reservation)


async def test_a_lost_parallel_slot_frees_itself_when_its_lease_ends(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", max_parallel=1)
    await ledger.reserve([key], 1, lease_s=0.2)  # never settled: its process died
    assert isinstance(await ledger.reserve([key], 1), Refusal)
    await asyncio.sleep(0.3)
    assert isinstance(await ledger.reserve([key], 1), Reservation)


async def test_headroom_shrinks_as_the_tightest_window_fills(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", rpm=4, rpd=100)
    shares = [(await ledger.reserve([key], 0)).headroom for _ in range(4)]
    assert shares == pytest.approx([0.75, 0.5, 0.25, 0.0])
    unlimited = await ledger.reserve([cand("p#1|m")], 1)
    assert unlimited.headroom == 1.0


async def test_a_learned_daily_quota_keeps_the_key_out_until_reset(make_ledger):
    ledger = await make_ledger()
    key = cand("p#0|m", rpm=100)
    body = (
        b'{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure",'
        b'"violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}'
    )
    now = time.time()
    status = await ledger.record("p#0|m", read_signal(429, {}, body, now, utc_reset))
    assert status.state is KeyState.QUOTA_EXHAUSTED
    refused = await ledger.reserve([key], 1)
    assert isinstance(refused, Refusal) and refused.reason == "quota_exhausted"
    assert refused.retry_at == pytest.approx(utc_reset(now), abs=1)
    assert (await ledger.status("p#0|m")).state is KeyState.QUOTA_EXHAUSTED


async def test_5xx_never_marks_a_key_out_of_quota_in_the_ledger(make_ledger):
    """Faults (5xx, 529, timeouts) are the endpoint's trouble: HealthState counts them
    (health/faults.py); the ledger's state of the key never moves, however many come, and a
    5xx's Retry-After is not a quota signal."""
    ledger = await make_ledger()
    key = cand("p#0|m", rpm=100)
    for status in (500, 502, 503, 529, None) * 4:
        signal = read_signal(status, {"retry-after": "600"}, b"", time.time(), utc_reset)
        assert (await ledger.record("p#0|m", signal)).state is KeyState.OK
    assert isinstance(await ledger.reserve([key], 1), Reservation)


async def test_an_invalid_key_gets_one_probe_per_interval(make_ledger):
    ledger = await make_ledger(Policy(invalid_probe_s=0.3))
    key = cand("p#0|m")
    await ledger.record("p#0|m", read_signal(401, {}, b"", time.time(), utc_reset))
    refused = await ledger.reserve([key], 1)
    assert isinstance(refused, Refusal) and refused.reason == "invalid"
    await asyncio.sleep(0.35)
    assert isinstance(await ledger.reserve([key], 1), Reservation)  # the probe
    assert isinstance(await ledger.reserve([key], 1), Refusal)  # the next waits its turn
    await ledger.record("p#0|m", read_signal(200, {}, b"", time.time(), utc_reset))
    assert isinstance(await ledger.reserve([key], 1), Reservation)  # the probe worked


async def test_a_spent_pool_answers_with_its_earliest_reset(make_ledger):
    ledger = await make_ledger()
    minute, day = cand("p#0|m", rpm=1), cand("p#1|m", rpd=1)
    await ledger.reserve([minute], 1)
    await ledger.reserve([day], 1)
    refused = await ledger.reserve([day, minute], 1)
    assert isinstance(refused, Refusal)
    assert refused.reason == "rpd"  # the first candidate's
    assert refused.retry_at <= time.time() + MINUTE_S + BUCKET_S + 1  # the minute frees first


async def test_no_candidates_is_a_refusal_not_an_error(make_ledger):
    ledger = await make_ledger()
    refused = await ledger.reserve([], 1)
    assert isinstance(refused, Refusal) and refused.reason == "no_candidates"


async def test_the_pool_view_shows_use_remaining_and_state_per_unit(make_ledger):
    ledger = await make_ledger()
    busy = cand("p#0|m", rpm=5, tpd=1000, max_parallel=3)
    spent = cand("p#1|m")
    first = await ledger.reserve([busy], 100)
    await ledger.reserve([busy], 50)
    await ledger.settle(first, 120)
    await ledger.record("p#1|m", read_signal(401, {}, b"", time.time(), utc_reset))
    views = {v.unit: v for v in await ledger.snapshot([busy, spent])}
    view = views["p#0|m"]
    assert (view.state, view.minute_requests, view.day_tokens, view.in_flight) == ("ok", 2, 170, 1)
    assert view.remaining == {"rpm": 3, "tpd": 830, "max_parallel": 2}
    other = views["p#1|m"]
    assert (other.state, other.reason, other.minute_requests) == ("invalid", "invalid_key", 0)
    assert other.until > time.time() and other.remaining == {}
