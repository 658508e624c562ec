"""The order candidates are tried in: most headroom first, known-out keys skipped, and when the
whole pool is out, the earliest time it frees up."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.headroom import HeadroomView
from apex_ai_proxy.keypool.ledger import Candidate, LocalLedger, Refusal, Reservation
from apex_ai_proxy.keypool.signals import read_signal
from apex_ai_proxy.keypool.state import KeyState, KeyStatus

NOW = 1_800_000_000.0


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


def units(order: list[Candidate]) -> list[str]:
    return [c.unit for c in order]


async def test_the_key_with_most_quota_left_goes_first():
    ledger, view = LocalLedger(clock=lambda: NOW), HeadroomView()
    small, large = cand("a#0|m", rpm=2), cand("b#0|m", rpm=6)
    view.note_reservation(await ledger.reserve([small], 1))  # 1 of 2 left
    view.note_reservation(await ledger.reserve([large], 1))  # 5 of 6 left
    assert units(view.order([small, large], NOW)) == ["b#0|m", "a#0|m"]


def test_ties_keep_the_strategy_order():
    view = HeadroomView()
    order = [cand("c#0|m"), cand("a#0|m"), cand("b#0|m")]
    assert units(view.order(order, NOW)) == ["c#0|m", "a#0|m", "b#0|m"]


def test_keys_known_to_be_out_are_not_tried():
    view = HeadroomView()
    view.note_status("a#0|m", KeyStatus(KeyState.QUOTA_EXHAUSTED, NOW + 3600, "daily_quota"), NOW)
    both = [cand("a#0|m"), cand("b#0|m")]
    assert units(view.order(both, NOW)) == ["b#0|m"] and view.back_at(both, NOW) == NOW + 3600
    # Once its time has passed, it is a candidate again.
    assert units(view.order([cand("a#0|m")], NOW + 3600)) == ["a#0|m"]


def test_a_spent_pool_says_when_it_frees_up_without_trying_anyone():
    view = HeadroomView()
    view.note_status("a#0|m", KeyStatus(KeyState.RATE_LIMITED, NOW + 40), NOW)
    view.note_status("b#0|m", KeyStatus(KeyState.QUOTA_EXHAUSTED, NOW + 9000), NOW)
    both = [cand("a#0|m"), cand("b#0|m")]
    assert view.order(both, NOW) == [] and view.back_at(both, NOW) == NOW + 40
    assert view.order(both[:1], NOW) == [] and view.back_at(both[:1], NOW) == NOW + 40


def test_a_refusal_marks_every_candidate_out_until_its_retry_time():
    view = HeadroomView()
    pool = [cand("a#0|m"), cand("b#0|m")]
    view.note_refusal(pool, Refusal(NOW + 12, "rpm"))
    assert view.order(pool, NOW) == [] and view.back_at(pool, NOW) == NOW + 12
    assert units(view.order(pool, NOW + 12)) == ["a#0|m", "b#0|m"]


def test_learned_windows_rank_keys_too():
    view = HeadroomView()
    low = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "3"}
    high = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "80"}
    view.note_signal("a#0|m", read_signal(200, low, b"", NOW, lambda t: t + 86400))
    view.note_signal("b#0|m", read_signal(200, high, b"", NOW, lambda t: t + 86400))
    assert units(view.order([cand("a#0|m"), cand("b#0|m")], NOW)) == ["b#0|m", "a#0|m"]


async def test_pool_capacity_is_spent_before_any_upstream_would_refuse():
    """Three keys with 2/4/6 rpm behind one model: the ledger grants exactly 12 requests in the
    minute, headroom-first, and the 13th is refused with a time, without an upstream call."""
    ledger, view = LocalLedger(clock=lambda: NOW), HeadroomView()
    pool = [cand("k#0|m", rpm=2), cand("k#1|m", rpm=4), cand("k#2|m", rpm=6)]
    served: dict[str, int] = {}
    for _ in range(12):
        result = await ledger.reserve(view.order(pool, NOW), 1)
        assert isinstance(result, Reservation)
        view.note_reservation(result)
        served[result.unit] = served.get(result.unit, 0) + 1
    assert served == {"k#0|m": 2, "k#1|m": 4, "k#2|m": 6}
    refused = await ledger.reserve(view.order(pool, NOW), 1)
    assert isinstance(refused, Refusal)
    view.note_refusal(pool, refused)
    assert view.order(pool, NOW) == []
    assert view.back_at(pool, NOW) == refused.retry_at


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),  # a unit may be listed twice (two targets)
            st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0)),
            st.booleans(),  # known to be out (for an hour)
        ),
        max_size=6,
    )
)
def test_first_is_the_candidate_order_puts_first(listing):
    # take_first picks the walk's first key without sorting: it must be order()'s first.
    view = HeadroomView()
    now = time.time()
    for name, headroom, out in listing:
        unit = f"{name}#0|m"
        if headroom is not None:
            view._remember(view._headroom, unit, headroom)
        if out:
            view.note_status(unit, KeyStatus(KeyState.RATE_LIMITED, now + 3600, "rpm"), now)
    candidates = [cand(f"{name}#0|m") for name, _, _ in listing]

    index = view.first(candidates)

    order = view.order(candidates, now)
    if not order:
        assert index is None
    else:
        assert index is not None and candidates[index] is order[0]
