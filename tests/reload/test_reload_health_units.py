"""HealthState.carry_over, on the table a `--workers N` launcher shares: a kept key keeps its
unit (cooldown, in-flight count) under its new name; a new key never takes a slot a kept key
still uses; a removed key's slot is cleared."""

from __future__ import annotations

import time

from apex_ai_proxy.health import CooldownTable, HealthState


def health(table: CooldownTable) -> HealthState:
    return HealthState(0.3, 300.0, 3600.0, table)


def test_a_renamed_key_keeps_its_unit_and_a_new_key_gets_no_slot_it_holds():
    table = CooldownTable(["p#0", "p#1"], shared=True)
    old = health(table)
    old.on_failure("p#1", retry_after=60)  # the key that stays
    old.on_failure("p#0", retry_after=60)  # the key that goes
    old.unit("p#1").in_flight = 2  # two requests on it, still running on `old`
    new = health(table)
    # p#0 removed; the old p#1 is now p#0; a new key comes in at p#1.
    unshared = new.carry_over(old, {"p#0": "p#1", "p#1": None})
    now = time.monotonic()
    assert not new.is_available("p#0", now), "the kept key's cooldown was lost"
    assert new.unit("p#0") is old.unit("p#1")
    assert new.unit("p#0").in_flight == 2
    old.unit("p#1").in_flight -= 1  # a request in flight finishing on the old state
    assert new.unit("p#0").in_flight == 1
    # The new p#1 cannot have slot p#1 (the kept key holds it): a private one, reported.
    assert new.is_available("p#1", now)
    assert unshared == ["p#1"]
    new.on_failure("p#1", retry_after=5)
    assert not new.is_available("p#0", now) and new.unit("p#0").cooldown_until > now + 30


def test_a_removed_keys_slot_is_cleared_for_whoever_takes_its_name():
    table = CooldownTable(["p#0", "p#1"], shared=True)
    old = health(table)
    old.on_failure("p#1", retry_after=60)
    new = health(table)
    # p#1 removed, then a different key under the same name: it starts clean, in the table.
    unshared = new.carry_over(old, {"p#0": "p#0", "p#1": None})
    assert new.is_available("p#1", time.monotonic())
    assert unshared == []
    assert health(table).unit("p#1").cooldown_until == 0.0  # another worker sees it cleared
    assert "p#1" in new and "p#2" not in new
