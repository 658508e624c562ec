"""Grants: a replica's small share of a unit's quota, reserved in Redis ahead of its requests.

Why: a Redis round trip on every request cost the gateway about half its throughput (each one
is a write, a parse and a task suspended and resumed through a dozen frames). So a reservation
that finds plenty of room also reserves, in the same EVALSHA and the same all-or-nothing check,
a few more requests (and their estimated tokens) for this process. The next requests for that
unit are served from the grant without a round trip; at the latest after GRANT_S (and never past
its 5-second bucket) what is left is refunded to the bucket it was counted in. When half of a
grant is served, the next one is asked for in the background, so a busy unit never runs dry
(requests that found it dry would each go to Redis while the refill is on its way).

Exactness: Redis always counts at least what was served, so a limit is never exceeded, by any
number of replicas. A grant takes at most 1/GRANT_SHARE of what is left in any window, so near a
limit grants shrink to nothing and every request goes to Redis again; what a grant can hide from
the other replicas is bounded by that share and lives at most GRANT_S. A grant is sized by what
the last one served (doubling while they run out), so a quiet unit holds almost nothing.

Not granted: units with max_parallel (a slot per request must be exact), units in a learned
state other than ok (the script's own check), and when this process learns the unit is out, its
grant is refunded at once. A state another replica learned is seen here within GRANT_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from apex_ai_proxy.keypool.ledger import Candidate, Reservation, settle_delta

GRANT_S = 1.0  # a grant's longest life
GRANT_MAX = 512  # requests a grant may hold beyond the one that asked
GRANT_SHARE = 8  # a grant takes at most 1/8 of what is left in any window
#: A reservation served from a grant (Reservation.backend): settled into the grant while held.
GRANTED = "redis-grant"


@dataclass(slots=True)
class Grant:
    bucket: int  # the minute bucket its requests were counted in
    day: int  # the day it was counted in
    requests: int  # left to serve
    tokens: int  # estimated tokens left to serve (may go below 0 when usage beat estimates)
    granted: int  # requests it came with
    headroom: float  # the unit's headroom (keypool/ledger.py Reservation) after the last served
    step: float  # what one request takes of it
    expires: float  # time.monotonic()

    def serve(self, tokens: int, now: float) -> bool:
        """Take one request of `tokens` from the grant, if it has room and is alive."""
        if self.requests > 0 and self.tokens >= tokens and now < self.expires:
            self.requests -= 1
            self.tokens -= tokens
            left = self.headroom - self.step  # not max(): it parses keywords on every call
            self.headroom = left if left > 0.0 else 0.0
            return True
        return False

    @property
    def low(self) -> bool:
        """Half served: time to ask for the next."""
        return 2 * self.requests <= self.granted

    def next_want(self) -> int:
        """What to ask for next time: twice what this one served, so a busy unit's grants grow
        to GRANT_MAX in a few steps and a quiet one's stay at one or two."""
        served = self.granted - self.requests
        return min(GRANT_MAX, 2 * served + 1)


#: refund(unit, bucket, day, requests, tokens): give back what a grant did not serve.
Refund = Callable[[str, int, int, int, int], None]


class GrantBook:
    """This process's grants, one per unit at most, and the asks in flight."""

    def __init__(self, refund: Refund) -> None:
        self.held: dict[str, Grant] = {}
        self.asking: set[str] = set()  # units a reservation in flight asks a grant for
        self._want: dict[str, int] = {}  # per unit: the grant to ask for next
        self._void: set[str] = set()  # units dropped while an ask was in flight
        self._refund = refund

    def serve(self, c: Candidate, tokens: int) -> Reservation | None:
        grant = self.held.get(c.unit)
        if grant is None or not grant.serve(tokens, time.monotonic()):
            return None
        return Reservation(c.unit, "", tokens, grant.bucket, grant.day, grant.headroom, GRANTED)

    def ask(self, c: Candidate) -> int:
        """The grant to ask for beside a reservation on `c` (0: none), the ask marked in flight:
        one per unit at a time, or concurrent requests would each take one. Units with
        max_parallel are never granted."""
        if c.limits[4] or c.unit in self.asking:
            return 0
        self.asking.add(c.unit)
        held = self.held.get(c.unit)
        return held.next_want() if held is not None else self._want.get(c.unit, 1)

    def done(self, units: list[str]) -> None:
        """The asks for these units are answered (kept, refused or failed)."""
        self.asking.difference_update(units)
        self._void.difference_update(units)

    def keep(
        self,
        c: Candidate,
        reservation: Reservation,
        requests: int,
        tokens: int,
        ms_left: int,
        own: bool = True,
    ) -> None:
        """What the script granted beside `reservation`, alive until GRANT_S or the bucket's
        end (ms_left). `own=False`: a refill, the reservation itself belongs to the grant.
        A grant of the same bucket and day is added to; another one is refunded."""
        if not own:
            requests, tokens = requests + 1, tokens + reservation.tokens
        unit = c.unit
        if unit in self._void:  # the unit was learned to be out while this was asked for
            requests, tokens = max(requests, 0), max(tokens, 0)
            self._refund(unit, reservation.bucket, reservation.day, requests, tokens)
            return
        if requests <= 0:
            return
        old = self.held.pop(unit, None)
        if old is not None and (old.bucket, old.day) == (reservation.bucket, reservation.day):
            requests, tokens = requests + old.requests, tokens + old.tokens
        elif old is not None:
            self._give_back(unit, old)
        life = min(GRANT_S, max(ms_left, 0) / 1000)
        grant = Grant(
            reservation.bucket,
            reservation.day,
            requests,
            tokens,
            requests,
            reservation.headroom,
            headroom_step(c.limits, reservation.tokens),
            time.monotonic() + life,
        )
        self.held[unit] = grant
        asyncio.get_running_loop().call_later(life, self._expire, unit, grant)

    def settle(self, reservation: Reservation, used_tokens: int | None) -> bool:
        """A request served from a grant that is still held: the difference goes back into the
        grant (refunded with it). False: the grant is gone; the caller settles Redis."""
        grant = self.held.get(reservation.unit)
        if grant is None or grant.bucket != reservation.bucket or grant.day != reservation.day:
            return False
        if used_tokens is None:
            grant.requests += 1
        grant.tokens -= settle_delta(reservation, used_tokens)
        return True

    def drop(self, unit: str) -> None:
        """The unit is out (this process learned it): its grant goes back at once."""
        grant = self.held.pop(unit, None)
        if grant is not None:
            self._give_back(unit, grant)
        if unit in self.asking:
            self._void.add(unit)

    def drop_all(self) -> None:
        for unit in list(self.held):
            self.drop(unit)

    def _expire(self, unit: str, grant: Grant) -> None:
        if self.held.get(unit) is grant:  # not added to or replaced since
            del self.held[unit]
            self._give_back(unit, grant)

    def _give_back(self, unit: str, grant: Grant) -> None:
        self._want[unit] = grant.next_want()
        if grant.requests or grant.tokens:
            self._refund(unit, grant.bucket, grant.day, grant.requests, grant.tokens)


def headroom_step(limits: tuple[int, int, int, int, int], tokens: int) -> float:
    """The share of its tightest window one request of `tokens` takes: a request served from a
    grant shows the headroom Redis would have answered with (other replicas' use aside)."""
    rpm, rpd, tpm, tpd, _ = limits
    return max(
        1 / rpm if rpm else 0.0,
        1 / rpd if rpd else 0.0,
        tokens / tpm if tpm else 0.0,
        tokens / tpd if tpd else 0.0,
    )
