"""Which key × model to try first: most headroom first, known-out keys not at all.

The view is this process's last knowledge (reservation replies, learned states and windows):
cheap to read on every request and allowed to be a little stale, because the ledger's
reservation is the exact check. When every candidate is known to be out, `order` says when the
first frees up, so the gateway can answer 429 with Retry-After without calling any upstream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from apex_ai_proxy.keypool.ledger import Candidate, Refusal, Reservation
from apex_ai_proxy.keypool.signals import Signal
from apex_ai_proxy.keypool.state import KeyStatus

#: A unit this process knows nothing about: assume it is fresh.
UNKNOWN_HEADROOM = 1.0
#: Hints are bounded: units are key × model pairs from the config, but a model name that comes
#: from the client could add pairs (passthrough); beyond this the oldest are forgotten.
MAX_HINTS = 100_000


class HeadroomView:
    def __init__(self) -> None:
        self._headroom: dict[str, float] = {}
        self._out_until: dict[str, float] = {}

    def order(self, candidates: list[Candidate], now: float) -> list[Candidate]:
        """The candidates to try, most headroom first (ties keep the strategy's order); empty
        when every one is known to be out (`back_at` says until when). May be `candidates`
        itself: the caller's list, not copied."""
        out = self._out_until
        if len(candidates) == 1:  # nothing to sort: one look
            return [] if out and out.get(candidates[0].unit, 0.0) > now else candidates
        available = [c for c in candidates if out.get(c.unit, 0.0) <= now] if out else candidates
        if len(available) > 1:
            # sort() is stable: equal headroom keeps the strategy's (weighted, round-robin…) order
            get = self._headroom.get
            available = sorted(available, key=lambda c: -get(c.unit, UNKNOWN_HEADROOM))
        return available

    def first(self, candidates: Sequence[Candidate]) -> int | None:
        """The index of the candidate `order` puts first (the most headroom, the first of a
        tie, not known to be out), without sorting; None when every one is known to be out."""
        out, get = self._out_until, self._headroom.get
        now = time.time() if out else 0.0
        best, most = None, -1.0
        for index, c in enumerate(candidates):
            if out and out.get(c.unit, 0.0) > now:
                continue
            headroom = get(c.unit, UNKNOWN_HEADROOM)
            if headroom > most:
                best, most = index, headroom
        return best

    def back_at(self, candidates: list[Candidate], now: float) -> float | None:
        """The earliest time one of `candidates` known to be out is back (None: none is)."""
        times = [until for c in candidates if (until := self._out_until.get(c.unit, 0.0)) > now]
        return min(times) if times else None

    def requests_left(self, candidates: Sequence[Candidate]) -> tuple[int, int] | None:
        """(the sum of the candidates' rpm, this process's estimate of what is left of it, the
        request just reserved counted); None when one has no rpm. Every request asks. Rounded:
        a share times its limit is a count give or take a float's last bit."""
        out, table = self._out_until, self._headroom
        if len(candidates) == 1 and not out:  # the usual route: one key, none known out
            c = candidates[0]
            rpm = c.limits[0]
            return (rpm, round(table.get(c.unit, UNKNOWN_HEADROOM) * rpm)) if rpm else None
        limit = left = 0
        now = time.time() if out else 0.0
        for c in candidates:
            rpm = c.limits[0]
            if not rpm:
                return None
            limit += rpm
            if not out or out.get(c.unit, 0.0) <= now:
                left += round(table.get(c.unit, UNKNOWN_HEADROOM) * rpm)
        return limit, left

    def out_until(self, unit: str) -> float:
        """When `unit` is back, as far as this process knows (0.0: not known to be out)."""
        return self._out_until.get(unit, 0.0)

    def note_reservation(self, reservation: Reservation) -> None:
        table, unit = self._headroom, reservation.unit
        if unit in table:  # _remember's common case, inline: every request comes here
            table[unit] = reservation.headroom
        else:
            self._remember(table, unit, reservation.headroom)

    def note_refusal(self, candidates: Sequence[Candidate], refusal: Refusal) -> None:
        """Every candidate of a refused reservation is out until at least its retry_at."""
        for candidate in candidates:
            self._remember(self._out_until, candidate.unit, refusal.retry_at)

    def note_status(self, unit: str, status: KeyStatus, now: float) -> None:
        if status.available(now):
            self._out_until.pop(unit, None)
        else:
            self._remember(self._out_until, unit, status.until)

    def note_signal(self, unit: str, signal: Signal) -> None:
        """Learned windows: the smaller share left of requests and tokens."""
        shares = [
            w.remaining / w.limit
            for w in (signal.requests, signal.tokens)
            if w is not None and w.remaining is not None and w.limit
        ]
        if shares:
            self._remember(self._headroom, unit, max(min(min(shares), 1.0), 0.0))

    @staticmethod
    def _remember(table: dict[str, float], unit: str, value: float) -> None:
        if unit not in table and len(table) >= MAX_HINTS:
            del table[next(iter(table))]
        table[unit] = value
