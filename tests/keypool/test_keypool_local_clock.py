"""The in-process ledger on a hand-driven clock: minute windows that roll, days that end, and
the running totals it keeps (so a reservation is integer operations) always equal to what its
buckets hold."""

from __future__ import annotations

import random

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, LocalLedger, Refusal, Reservation
from apex_ai_proxy.keypool.limits import BUCKET_S, MINUTE_S, day_window


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


async def test_a_full_minute_window_serves_again_once_its_buckets_leave_it():
    start = day_window(1_800_000_000.0, "UTC")[0] + 3600.0  # an hour into a UTC day
    clock = Clock(start)
    ledger = LocalLedger(clock=clock)
    key = cand("p#0|m", rpm=2, tpm=100)
    assert isinstance(await ledger.reserve([key], 40), Reservation)
    clock.now += BUCKET_S  # the next bucket
    assert isinstance(await ledger.reserve([key], 40), Reservation)
    refused = await ledger.reserve([key], 1)
    assert isinstance(refused, Refusal) and refused.reason == "rpm"
    assert refused.retry_at == (int(start // BUCKET_S) + 1) * BUCKET_S + MINUTE_S
    clock.now = refused.retry_at  # the first bucket has left the window, the second not
    second = await ledger.reserve([key], 70)  # 40 + 70 tokens: over tpm
    assert isinstance(second, Refusal) and second.reason == "tpm"
    assert isinstance(await ledger.reserve([key], 60), Reservation)


async def test_the_days_counts_start_again_at_midnight():
    day, end = day_window(1_800_000_000.0, "UTC")
    clock = Clock(end - 1.0)
    ledger = LocalLedger(clock=clock)
    key = cand("p#0|m", rpd=1)
    assert isinstance(await ledger.reserve([key], 10), Reservation)
    refused = await ledger.reserve([key], 10)
    assert isinstance(refused, Refusal) and (refused.reason, refused.retry_at) == ("rpd", end)
    clock.now = end
    served = await ledger.reserve([key], 10)
    assert isinstance(served, Reservation) and served.day == int(end) > day
    view = (await ledger.snapshot([key]))[0]
    assert view.day_requests == 1


async def test_running_totals_always_equal_the_buckets():
    """Random reservations, settlements and refunds over five minutes: the totals a reservation
    checks are the sums of the buckets, the way the pool view counts them."""
    rng = random.Random(13)
    clock = Clock(1_800_000_000.0)
    ledger = LocalLedger(clock=clock)
    key = cand("p#0|m", rpm=40, tpm=5_000, max_parallel=6)
    held: list[Reservation] = []
    for _ in range(2_000):
        clock.now += rng.random() * 0.3
        if held and rng.random() < 0.5:
            used = rng.choice([None, 0, rng.randrange(1, 400)])
            await ledger.settle(held.pop(rng.randrange(len(held))), used)
        else:
            result = await ledger.reserve([key], rng.randrange(1, 300))
            if isinstance(result, Reservation):
                held.append(result)
        usage = ledger._usage.get(key.unit)
        if usage is not None:
            assert usage.requests_in_minute == sum(usage.minute_requests.values())
            assert usage.tokens_in_minute == sum(usage.minute_tokens.values())
    view = (await ledger.snapshot([key]))[0]
    assert view.minute_requests <= 40 and view.in_flight <= 6
