"""The in-process ledger's fast path (a reservation that fits in the room left at the last full
check is only counted) against the same ledger checking every reservation in full: any
sequence of reservations, settlements, refunds, clock moves, learned states and changed limits
gets the same answers and leaves the same counts. Plus one named test per way the fast path
could go wrong."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import apex_ai_proxy.keypool.ledger as ledger_module
from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, LocalLedger, Refusal, Reservation
from apex_ai_proxy.keypool.limits import BUCKET_S, day_window
from apex_ai_proxy.keypool.signals import Signal, Verdict

START = day_window(1_800_000_000.0, "UTC")[1] - 90.0  # 90 s before a UTC midnight


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FullCheckLedger(LocalLedger):
    """The reference: the same ledger with its fast path closed (no room, ever)."""

    def reserve_now(self, candidates, tokens, lease_s=ledger_module.DEFAULT_LEASE_S):
        for usage in self._usage.values():
            usage.room = ledger_module._CLOSED
        return super().reserve_now(candidates, tokens, lease_s)


LIMITS = [
    Limits(rpm=6, tpm=900),
    Limits(rpm=4, rpd=9, tpm=500, tpd=2_000),
    Limits(rpm=3),
    Limits(tpm=400),
    Limits(rpd=5),
    Limits(rpm=5, max_parallel=2),
]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 2), st.integers(0, 600)),
        st.tuples(st.just("reserve_one"), st.integers(0, 2), st.integers(0, 600)),
        st.tuples(st.just("settle"), st.integers(0, 50), st.one_of(st.none(), st.integers(0, 700))),
        st.tuples(st.just("wait"), st.floats(0.0, 2.0 * BUCKET_S)),
        st.tuples(st.just("limits"), st.integers(0, 2), st.integers(0, len(LIMITS) - 1)),
        st.tuples(st.just("429"), st.integers(0, 2), st.floats(0.5, 20.0)),
        st.tuples(st.just("401"), st.integers(0, 2)),
    ),
    max_size=80,
)


def counts(ledger: LocalLedger, unit: str) -> tuple[int, int, int, int]:
    usage = ledger._usage.get(unit)
    if usage is None:
        return (0, 0, 0, 0)
    ledger_module._fold(usage)
    return (
        usage.requests_in_minute,
        usage.tokens_in_minute,
        usage.day_requests,
        usage.day_tokens,
    )


@settings(max_examples=300, deadline=None)
@given(operations)
async def test_the_fast_path_answers_as_a_full_check_would(ops):
    clock = Clock(START)
    fast, full = LocalLedger(clock=clock), FullCheckLedger(clock=clock)
    units = [f"p#{i}|m" for i in range(3)]
    limits = {unit: LIMITS[i] for i, unit in enumerate(units)}
    held: list[tuple[Reservation, Reservation]] = []
    for op in ops:
        if op[0] in ("reserve", "reserve_one"):
            # the walk's order: from the chosen unit on, wrapping round; or that unit alone, as
            # a route with one key asks (KeyPool.take_alone)
            order = units[op[1] :] + units[: op[1]]
            candidates = [Candidate.of(u, limits[u]) for u in order]
            if op[0] == "reserve":
                got = fast.reserve_now(candidates, op[2])
            else:
                got = fast.reserve_one(candidates[0], op[2])
                candidates = candidates[:1]
            want = full.reserve_now(candidates, op[2])
            assert type(got) is type(want), (got, want)
            if isinstance(want, Refusal):
                assert (got.reason, got.retry_at) == (want.reason, want.retry_at)
            else:
                assert (got.unit, got.tokens, got.bucket, got.day) == want[:1] + want[2:5]
                assert bool(got.id) == bool(want.id)  # a parallel slot's lease: one each
                if not (limits[want.unit].rpd or limits[want.unit].tpd):
                    assert abs(got.headroom - want.headroom) < 1e-9
                held.append((got, want))
        elif op[0] == "settle" and held:
            got, want = held.pop(op[1] % len(held))
            fast.settle_now(got, op[2])
            full.settle_now(want, op[2])
        elif op[0] == "wait":
            clock.now += op[1]
        elif op[0] == "limits":
            limits[units[op[1]]] = LIMITS[op[2]]
        elif op[0] == "429":
            signal = Signal(Verdict.RATE_LIMITED, clock.now + op[2], reason="rate_limited")
            assert await fast.record(units[op[1]], signal) == await full.record(
                units[op[1]], signal
            )
        elif op[0] == "401":
            signal = Signal(Verdict.INVALID, reason="invalid_key")
            assert await fast.record(units[op[1]], signal) == await full.record(
                units[op[1]], signal
            )
        for unit in units:
            assert counts(fast, unit) == counts(full, unit)


def cand(unit: str, **limits: int) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


async def test_a_lowered_limit_holds_from_the_next_request_on():
    clock = Clock(START)
    ledger = LocalLedger(clock=clock)
    for _ in range(5):
        assert isinstance(ledger.reserve_now([cand("k|m", rpm=100)], 1), Reservation)
    refused = ledger.reserve_now([cand("k|m", rpm=5)], 1)  # a reload lowered it to 5
    assert isinstance(refused, Refusal) and refused.reason == "rpm"


async def test_real_usage_over_the_estimate_counts_against_the_next_reservations():
    ledger = LocalLedger(clock=Clock(START + 30.0))
    key = cand("k|m", tpm=1_000)
    first = ledger.reserve_now([key], 100)
    second = ledger.reserve_now([key], 100)  # on the fast path
    ledger.settle_now(second, 850)  # the answer used far more than estimated
    refused = ledger.reserve_now([key], 100)  # 100 + 850 + 100 > 1000
    assert isinstance(first, Reservation) and isinstance(refused, Refusal)
    assert refused.reason == "tpm"


async def test_a_refunded_fast_reservation_frees_its_room():
    ledger = LocalLedger(clock=Clock(START + 30.0))
    key = cand("k|m", rpm=2)
    ledger.reserve_now([key], 1)
    never_sent = ledger.reserve_now([key], 1)
    assert isinstance(ledger.reserve_now([key], 1), Refusal)
    ledger.settle_now(never_sent, None)
    assert isinstance(ledger.reserve_now([key], 1), Reservation)


async def test_fast_reservations_count_in_the_bucket_they_were_made_in():
    clock = Clock(START + 30.0)
    ledger = LocalLedger(clock=clock)
    key = cand("k|m", rpm=3)
    for _ in range(3):
        assert isinstance(ledger.reserve_now([key], 1), Reservation)
    clock.now += 2 * BUCKET_S  # later buckets: the three still count
    refused = ledger.reserve_now([key], 1)
    assert isinstance(refused, Refusal)
    clock.now = refused.retry_at  # their bucket has left the minute
    assert isinstance(ledger.reserve_now([key], 1), Reservation)


async def test_a_learned_429_closes_the_fast_path_at_once():
    clock = Clock(START + 30.0)
    ledger = LocalLedger(clock=clock)
    key = cand("k|m", rpm=1_000)
    ledger.reserve_now([key], 1)
    ledger.reserve_now([key], 1)
    await ledger.record("k|m", Signal(Verdict.RATE_LIMITED, clock.now + 10.0, reason="x"))
    refused = ledger.reserve_now([key], 1)
    assert isinstance(refused, Refusal) and refused.reason == "rate_limited"
