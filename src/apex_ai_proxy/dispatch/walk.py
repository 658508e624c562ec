"""One request's way through the key pool (dispatch/pool.py): candidates in headroom order
(a pinned conversation's key first), one reservation per attempt, and the 429 when every key
is out, after waiting up to the model's queue_timeout_s for the first to be back."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from apex_ai_proxy.dispatch.affinity import Affinity
from apex_ai_proxy.errors import AllRateLimited
from apex_ai_proxy.keypool import Candidate, Refusal, Reservation
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.routing import Route

if TYPE_CHECKING:
    from apex_ai_proxy.dispatch.pool import KeyPool

Pair = tuple[Target, ApiKey]


class Walk:
    """One request's way through the pool: headroom order, then one reservation per attempt."""

    # Defaults on the class: a walk is made on every request, and most never change these.
    #: Passed over by a reservation (the ledger found them out): asked once more at the end, so
    #: a walk that ends on them ends with their Refusal and its retry_at. A tuple until then.
    skipped: Sequence[Candidate] = ()
    reserved = 0  # reservations handed out
    reserved_as: Candidate | None = None  # the candidate of the last reservation
    refusal: Refusal | None = None  # the last: every candidate left was out
    retry_at = 0.0  # when `order` found every candidate out: the first back
    #: monotonic time the model's queue_timeout_s ends, counted from the first wait
    deadline: float | None = None
    affinity: Affinity | None = None
    session: str | None = None  # the conversation, when the model pins them

    # Set by `order`:
    listed: list[Candidate]  # the balancer's candidates, as ledger units
    pairs: dict[str, Pair]  # the first (target, key) of each unit
    remaining: Sequence[Candidate]  # to try, in headroom order

    def __init__(
        self,
        pool: KeyPool,
        route: Route,
        offered: Iterable[Pair],
        pairs: Callable[[Route], Iterable[Pair]],
        tokens: int,
        affinity: Affinity | None = None,
        session: str | None = None,
    ) -> None:
        self.pool = pool
        self.route = route
        #: The balancer's candidates in strategy order (asked again after a wait).
        self._pairs = pairs
        self.tokens = tokens
        if session is not None:
            self.affinity, self.session = affinity, session
        #: Candidates to try now; False: `wait` first (or the dispatcher's usual answer).
        self.ready = self.order(offered)

    def order(self, offered: Iterable[Pair] | None = None) -> bool:
        """The balancer's candidates (`offered`, else asked afresh) as ledger units (`listed`)
        and those to try in headroom order (`remaining`). False when there are none to try now:
        every one known to be out (`retry_at` says until when) or none listed."""
        pool = self.pool
        known = pool.known  # (key name, upstream model) → Candidate: built at start-up
        listed: list[Candidate] = []
        pairs: dict[str, Pair] = {}
        if offered is None:
            offered = self._pairs(self.route)
        for pair in offered:
            target, key = pair
            unit = known.get((key.name, target.upstream_model)) or pool.candidate(target, key)
            listed.append(unit)
            pairs.setdefault(unit.unit, pair)
        self.listed, self.pairs = listed, pairs
        if not listed:
            self.remaining = listed
            return False
        now = time.time()
        order = self.pool.view.order(listed, now)
        if order is not listed:  # headroom reordered the balancer's order (degraded last)
            order = self._degraded_last(order)
        if self.session is not None and self.affinity is not None:
            order = _pinned_first(order, self.affinity.pinned(self.session))
        self.remaining = order
        if not order:
            self.retry_at = self.pool.view.back_at(listed, now) or now
            return False
        return True

    async def wait(self) -> None:
        """After `order` found nothing to try: wait for the first candidate to be back
        (queue_timeout_s) or refuse with the 429; when every key cools down (HealthState), wait
        only if the model queues, else leave it to the dispatcher's usual answer."""
        while True:
            if self.listed:
                await self._wait_or_refuse(self.retry_at)
            else:
                health = self.pool.health_frees_at(self.route)
                if health is None or not self._may_wait(health):
                    return
                await asyncio.sleep(health - time.time())
            if self.order():
                return

    def answered_by(self, unit: str) -> None:
        """The conversation stays with the key that answered it."""
        if self.session is not None and self.affinity is not None:
            self.affinity.pin(self.session, unit)

    def _degraded_last(self, order: list[Candidate]) -> list[Candidate]:
        """Headroom does not bring a degraded endpoint's keys (health/faults.py) back before
        the healthy ones' (the balancer put them last)."""
        health = self.pool.health
        if health is None:
            return order
        pairs = self.pairs
        return health.degraded_last(order, lambda c: pairs[c.unit][0].endpoint(), time.monotonic())

    async def follow_shared_pin(self) -> None:
        """With pins shared between replicas (Redis state): a conversation this process has no
        fresh pin for goes to the key another replica pinned it to."""
        affinity, session = self.affinity, self.session
        if affinity is None or session is None or affinity.shared is None:
            return
        if affinity.pinned(session) is None:
            self.remaining = _pinned_first(list(self.remaining), await affinity.lookup(session))

    def passed(self, unit: str) -> None:
        """The attempt the dispatcher made without the walk (KeyPool.take_first) on `unit`:
        counted as this walk's, and not tried again."""
        self.reserved += 1
        self.reserved_as = next((c for c in self.listed if c.unit == unit), None)
        self.remaining = [c for c in self.remaining if c.unit != unit]

    def take_now(self) -> tuple[Target, ApiKey, Reservation] | None:
        """`next` without a coroutine, for the usual case: the in-process ledger has room for
        one of the candidates left. None: ask `next` (another ledger, none left, or refused)."""
        local = self.pool.local_ledger
        remaining = self.remaining
        if local is None or not remaining:
            return None
        first = remaining[0]
        result = local.reserve_now(remaining, self.tokens, first.lease_s)
        if type(result) is not Reservation:
            return None
        if result.unit != first.unit:  # the ones before it were out
            return self._reserved(result)
        # _reserved's common case, inline: every request with local state comes here
        self.pool.view.note_reservation(result)
        self.reserved_as = first
        self.remaining = remaining[1:]
        self.reserved += 1
        target, key = self.pairs[first.unit]
        return target, key, result

    async def next(self) -> tuple[Target, ApiKey, Reservation] | None:
        pool = self.pool
        local = pool.local_ledger  # in process: reserved on the spot
        while self.remaining or self.skipped:
            if not self.remaining:
                self.remaining, self.skipped = self.skipped, ()
            remaining = self.remaining
            lease = remaining[0].lease_s
            if local is not None:
                result = local.reserve_now(remaining, self.tokens, lease)
            else:
                result = await pool.ledger.reserve(remaining, self.tokens, lease_s=lease)
            if isinstance(result, Reservation):
                return self._reserved(result)
            pool.view.note_refusal(remaining, result)
            self.refusal = result
            if self.reserved:
                return None  # the attempts made decide the answer (their failures are listed)
            await self._wait_or_refuse(result.retry_at)
            if not self.order():  # asked afresh: keys may be back from their cooldowns too
                await self.wait()
        return None

    def _reserved(self, result: Reservation) -> tuple[Target, ApiKey, Reservation]:
        self.pool.view.note_reservation(result)
        remaining = self.remaining
        if remaining[0].unit == result.unit:  # the common case: the first had room
            self.reserved_as = remaining[0]
            self.remaining = remaining[1:]
        else:  # the ones before it were out: passed over
            index = next(i for i, c in enumerate(remaining) if c.unit == result.unit)
            self.reserved_as = remaining[index]
            self.skipped = [*self.skipped, *remaining[:index]]
            self.remaining = remaining[index + 1 :]
        self.reserved += 1
        target, key = self.pairs[result.unit]
        return target, key, result

    def spent(self) -> AllRateLimited | None:
        """The 429 for a walk whose keys all turned out to be out of quota: the earliest time
        one is back, from the ledger's refusal, this process's view and the health cooldowns;
        None when none of them knows."""
        now = time.time()
        known = [until for c in self.units() if (until := self.pool.view.out_until(c.unit)) > now]
        if self.refusal is not None:
            known.append(self.refusal.retry_at)
        health = self.pool.health_frees_at(self.route)
        if health is not None:
            known.append(health)
        if not known:
            return None
        return pool_spent(self.route, min(known) - now, self.units())

    def units(self) -> list[Candidate]:
        return self.listed

    def _earliest(self, retry_at: float) -> float:
        health = self.pool.health_frees_at(self.route)
        return retry_at if health is None else min(retry_at, health)

    async def _wait_or_refuse(self, retry_at: float) -> None:
        """Sleep until `retry_at` when the model's queue_timeout_s allows, else the 429."""
        at = self._earliest(retry_at)
        if self._may_wait(at):
            await asyncio.sleep(at - time.time())
            return
        raise pool_spent(self.route, max(at - time.time(), 0.0), self.units())

    def _may_wait(self, at: float) -> bool:
        wait = at - time.time()
        if self.deadline is None:
            self.deadline = time.monotonic() + self.pool.queue_timeout(self.route)
        return wait > 0 and time.monotonic() + wait <= self.deadline


def _pinned_first(order: list[Candidate], unit: str | None) -> list[Candidate]:
    """`order` with the pinned conversation's unit first (when it is among them)."""
    if unit is None or not order or order[0].unit == unit:
        return order
    pinned = [c for c in order if c.unit == unit]
    return pinned + [c for c in order if c.unit != unit] if pinned else order


def pool_spent(route: Route, wait: float, candidates: list[Candidate]) -> AllRateLimited:
    seconds = max(1, math.ceil(wait))
    headers = {
        "retry-after": str(seconds),
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{seconds}s",
    }
    if candidates and all(c.limits[0] for c in candidates):
        headers["x-ratelimit-limit-requests"] = str(sum(c.limits[0] for c in candidates))
    return AllRateLimited(
        f"Every key for model '{route.name}' is out of quota; the first frees up in "
        f"{seconds}s. No upstream was called.",
        headers=headers,
    )
