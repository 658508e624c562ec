"""The workers' shared quota table (keypool/shared_ledger.py) at its edges: full, and with its
lock held by a worker that died inside it."""

from __future__ import annotations

import logging
import time

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, Refusal, Reservation
from apex_ai_proxy.keypool.shared_ledger import LOCK_WAIT_S, SharedLedger, SharedTable


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


async def test_a_full_table_counts_new_units_in_the_worker_alone_with_a_warning(caplog):
    table = SharedTable(capacity=2)
    one, two = SharedLedger(table), SharedLedger(table)
    caplog.set_level(logging.WARNING, logger="apex_ai_proxy")
    for unit in ("a#0|m", "b#0|m"):
        assert isinstance(await one.reserve([cand(unit, rpm=1)], 1), Reservation)
        assert isinstance(await two.reserve([cand(unit, rpm=1)], 1), Refusal)  # shared
    third = cand("c#0|m", rpm=1)
    assert isinstance(await one.reserve([third], 1), Reservation)
    assert isinstance(await one.reserve([third], 1), Refusal)  # still limited, per worker
    assert isinstance(await two.reserve([third], 1), Reservation)
    assert sum("table is full" in r.getMessage() for r in caplog.records) == 2  # once each


async def test_a_lock_never_released_delays_but_never_stops_the_others(caplog):
    table = SharedTable(capacity=8)
    ledger = SharedLedger(table)
    caplog.set_level(logging.WARNING, logger="apex_ai_proxy")
    table.lock.acquire()  # a worker killed while it held the lock
    started = time.monotonic()
    assert isinstance(await ledger.reserve([cand("a#0|m", rpm=5)], 1), Reservation)
    assert LOCK_WAIT_S <= time.monotonic() - started < LOCK_WAIT_S + 1
    assert any("was not released" in r.getMessage() for r in caplog.records)
