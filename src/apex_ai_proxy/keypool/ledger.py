"""The quota ledger: one interface, two backends (this module: the in-process one).

    reserve(candidates, tokens, lease_s) → Reservation | Refusal
        Try the candidates in the order given; reserve on the first whose every bucket has room
        (rpm, rpd, tpm, tpd, max_parallel, and a learned state that is not out), all or nothing.
        Refusal carries the earliest time any candidate frees up: a 429's Retry-After.
    settle(reservation, used_tokens)
        After the call: the real token count replaces the estimate; None = never sent (refund).
    record(unit, signal) → KeyStatus
        What an answer taught (keypool/signals.py), through the state machine (keypool/state.py).

Units are "key name|model" (`openai#0|gpt-4o`): never the key itself. Times are epoch seconds.
The Redis backend (redis_ledger.py) keeps the same contract for many replicas; its tests and
these run the same contract suite.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from apex_ai_proxy.keypool.config import MAX_LIMIT, Limits
from apex_ai_proxy.keypool.limits import (
    BUCKET_S,
    LIVE_BUCKETS,
    Counts,
    clamp_tokens,
    day_window,
    limit_vector,
    refused,
    share_left,
)
from apex_ai_proxy.keypool.signals import Signal
from apex_ai_proxy.keypool.state import (
    DEFAULT_POLICY,
    OK_STATUS,
    KeyState,
    KeyStatus,
    Policy,
    transition,
)

#: Reservation.backend of a reservation made in this process's memory.
LOCAL_BACKEND = "local"
#: Seconds a parallel slot is held when its settle never comes (the process died).
DEFAULT_LEASE_S = 600.0


@dataclass(frozen=True, slots=True)
class Candidate:
    unit: str  # "key name|model"
    limits: tuple[int, int, int, int, int]  # (rpm, rpd, tpm, tpd, max_parallel), 0 = none
    timezone: str | None = None  # of the daily windows
    lease_s: float = DEFAULT_LEASE_S  # a parallel slot's lease: the upstream's request timeout

    @classmethod
    def of(cls, unit: str, limits: Limits) -> Candidate:
        return cls(unit, limit_vector(limits), limits.reset_timezone)


class Reservation(NamedTuple):
    """Immutable, as a frozen dataclass would be; a NamedTuple because one is made on every
    request and a frozen dataclass's __init__ costs a setattr call per field."""

    unit: str
    id: str
    tokens: int  # the estimate reserved
    bucket: int  # minute bucket it was counted in
    day: int  # start of the day it was counted in
    headroom: float  # share of the tightest configured window left after it (1.0: no limits)
    backend: str  # "local" or "redis": settle goes where the reservation was made


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_at: float  # earliest time a candidate frees up (epoch seconds)
    reason: str  # the bucket or state that refused the first candidate: rpm, rpd, invalid, …


@dataclass(frozen=True, slots=True)
class UnitView:
    """One key × model as `apex-ai-proxy pool` and the admin endpoint show it (no key material:
    the unit is a key's name)."""

    unit: str
    state: str
    reason: str
    until: float  # epoch seconds; 0 when ok
    minute_requests: int
    minute_tokens: int
    day_requests: int
    day_tokens: int
    in_flight: int  # parallel slots held (counted only where max_parallel is set)
    remaining: dict[str, int]  # per configured limit ("rpm", "rpd", …): what is left of it


def unit_view(
    c: Candidate, status: KeyStatus, counts: tuple[int, int, int, int, int], now: float
) -> UnitView:
    """A view from the counts (minute requests, minute tokens, day requests, day tokens,
    in flight) either backend read."""
    used = dict(zip(("rpm", "tpm", "rpd", "tpd", "max_parallel"), counts, strict=True))
    limits = dict(zip(("rpm", "rpd", "tpm", "tpd", "max_parallel"), c.limits, strict=True))
    remaining = {name: max(limit - used[name], 0) for name, limit in limits.items() if limit}
    out = not status.available(now)
    return UnitView(
        c.unit,
        status.state.value if out else KeyState.OK.value,
        status.reason if out else "",
        status.until if out else 0.0,
        *counts,
        remaining,
    )


class Ledger(Protocol):
    async def reserve(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal: ...

    async def settle(self, reservation: Reservation, used_tokens: int | None) -> None: ...

    async def record(self, unit: str, signal: Signal) -> KeyStatus: ...

    async def status(self, unit: str) -> KeyStatus: ...

    async def snapshot(self, candidates: Sequence[Candidate]) -> list[UnitView]: ...

    async def close(self) -> None: ...


_new_tuple = tuple.__new__
_ids = itertools.count()
_ID_PREFIX = os.urandom(4).hex()


def new_reservation_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):x}"


def clamp_lease(lease_s: float) -> float:
    return min(max(float(lease_s), 0.001), 86_400.0) if lease_s == lease_s else DEFAULT_LEASE_S


def settle_delta(reservation: Reservation, used_tokens: int | None) -> int:
    """What settling adds to the reserved tokens: the real count minus the estimate, or the
    whole estimate back when the request was never sent."""
    if used_tokens is None:
        return -reservation.tokens
    return clamp_tokens(used_tokens) - reservation.tokens


@dataclass(slots=True)
class _Usage:
    minute_requests: dict[int, int] = field(default_factory=dict)  # bucket → count
    minute_tokens: dict[int, int] = field(default_factory=dict)
    day: int = 0
    day_requests: int = 0
    day_tokens: int = 0
    leases: dict[str, float] = field(default_factory=dict)  # reservation id → expiry
    # Kept so that a reservation is a few integer operations, not sums and date math:
    requests_in_minute: int = 0  # sum(minute_requests.values())
    tokens_in_minute: int = 0  # sum(minute_tokens.values())
    pruned: int = -1  # the bucket the minute windows were last pruned in
    day_end: float = 0.0  # when `day` ends (epoch seconds)
    #: From `fresh_from` to `fresh_until` (the bucket pruned, within `day`) there is nothing
    #: to prune but expired leases: two comparisons on a reservation, not bucket and day math.
    fresh_from: float = 0.0
    fresh_until: float = 0.0
    # The fast path (LocalLedger.reserve_now): a reservation that fits in the room left at the
    # last full check is only counted here. Everything pending is in bucket `pruned` of `day`
    # (the fast path runs only while they are fresh); _fold adds it to the counts above, and
    # whatever reads those counts folds first.
    pending: int = 0
    pending_tokens: int = 0
    #: Requests and tokens the fast path may still take: the least room in any request window
    #: (rpm, rpd) and any token window (tpm, tpd) at the last full check. _CLOSED: check in
    #: full (max_parallel, a state that is not plainly ok, a count changed outside the fast path).
    room: int = -(1 << 62)
    token_room: int = 0
    #: 1 / the limit of the window `room` and `token_room` came from: the headroom, cheaply.
    per_request: float = 0.0
    per_token: float = 0.0
    #: The limits the room was computed for: other limits (a reload, an edited virtual key)
    #: check in full.
    limits: tuple[int, int, int, int, int] | None = None


#: The room of a unit without a request (or token) window: never reached.
_UNLIMITED_ROOM = 1 << 62
#: The room of a closed fast path: below any count of pending requests, refunds included.
_CLOSED = -(1 << 62)


class InProcessLedger:
    """A ledger in this machine's memory (LocalLedger, the workers' SharedLedger): nothing in it
    waits, so the key pool calls `reserve_now` / `settle_now` directly on every request (no
    coroutine); `reserve` / `settle` are the Ledger contract's async form of the same."""

    backend = LOCAL_BACKEND

    async def reserve(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal:
        if type(tokens) is not int or tokens < 0 or tokens > MAX_LIMIT:
            tokens = clamp_tokens(tokens)
        return self.reserve_now(candidates, tokens, lease_s)

    async def settle(self, reservation: Reservation, used_tokens: int | None) -> None:
        self.settle_now(reservation, used_tokens)

    def reserve_now(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal:
        """`reserve` without a coroutine. `tokens`: an int in [0, MAX_LIMIT] (`reserve` clamps
        what it is given; the walk's estimate is one)."""
        raise NotImplementedError

    def settle_now(self, reservation: Reservation, used_tokens: int | None) -> None:
        raise NotImplementedError

    def reserve_one(self, c: Candidate, tokens: int) -> Reservation | Refusal:
        return self.reserve_now((c,), tokens, c.lease_s)


class LocalLedger(InProcessLedger):
    """In-process ledger: exact for one process; the fallback of the Redis ledger."""

    def __init__(
        self, policy: Policy = DEFAULT_POLICY, clock: Callable[[], float] = time.time
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._usage: dict[str, _Usage] = {}
        self._status: dict[str, KeyStatus] = {}

    def reserve_now(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal:
        """The first candidate with room in every window takes the request. One function, the
        checks and the counting inline: every request with local state runs it."""
        now = self.clock()
        usages, statuses = self._usage, self._status
        earliest, first_reason = float("inf"), ""
        for c in candidates:
            unit = c.unit
            usage = usages.get(unit)
            if usage is not None and _fits(usage, c, tokens, now):
                return _counted(usage, unit, tokens)  # room was left at the last full check
            status = statuses.get(unit) if statuses else None
            if status is not None and not status.available(now):
                blocked: tuple[float, str] = (status.until, status.state.value)
            else:
                if usage is None:
                    usage = usages[unit] = _Usage()
                result = self._reserve_in_full(c, usage, status, tokens, now, lease_s)
                if type(result) is Reservation:
                    return result
                blocked = result  # type: ignore[assignment]
            if blocked[0] < earliest:
                earliest = blocked[0]
            first_reason = first_reason or blocked[1]
        return Refusal(earliest if candidates else now, first_reason or "no_candidates")

    def reserve_one(self, c: Candidate, tokens: int) -> Reservation | Refusal:
        """`reserve_now` of one candidate, the fast path first: the first attempt of the usual
        request (KeyPool.take_first, no walk) comes here."""
        usage = self._usage.get(c.unit)
        if usage is not None and _fits(usage, c, tokens, self.clock()):
            return _counted(usage, c.unit, tokens)
        return self.reserve_now((c,), tokens, c.lease_s)

    def _reserve_in_full(
        self,
        c: Candidate,
        usage: _Usage,
        status: KeyStatus | None,
        tokens: int,
        now: float,
        lease_s: float,
    ) -> Reservation | tuple[float, str]:
        """Every window checked on exact counts (the fast path's room is spent, closed or
        stale): the reservation, else (when it frees up, which window is full)."""
        if not usage.fresh_from <= now < usage.fresh_until or usage.leases:
            _prune(usage, now, c.timezone)
        else:
            _fold(usage)
        blocked = refused(
            c.limits, tokens, _counts(usage), lambda: _buckets(usage), usage.day_end, now
        )
        if blocked is not None:
            return blocked
        bucket = usage.pruned  # pruned at `now` above: the current bucket
        counts = usage.minute_requests
        counts[bucket] = counts.get(bucket, 0) + 1
        counts = usage.minute_tokens
        counts[bucket] = counts.get(bucket, 0) + tokens
        usage.requests_in_minute += 1
        usage.tokens_in_minute += tokens
        usage.day_requests += 1
        usage.day_tokens += tokens
        rid = ""  # names a parallel slot: only a reservation holding one needs an id
        if c.limits[4]:
            rid = new_reservation_id()
            usage.leases[rid] = now + clamp_lease(lease_s)
        if status is not None and status.state is KeyState.INVALID:
            # This request is the probe: the next one waits another probe interval.
            self._status[c.unit] = status = KeyStatus(
                KeyState.INVALID, now + self.policy.invalid_probe_s, status.reason, status.recent
            )
        _reset_room(usage, c.limits, status is None or status.state is KeyState.OK)
        left = share_left(c.limits, _counts(usage))
        return Reservation(c.unit, rid, tokens, bucket, usage.day, left, self.backend)

    def settle_now(self, reservation: Reservation, used_tokens: int | None) -> None:
        unit, rid, reserved, bucket, day, _, _ = reservation
        usage = self._usage.get(unit)
        if usage is None:
            return
        if rid:  # it holds a parallel slot
            usage.leases.pop(rid, None)
        if used_tokens is None:  # never sent: refunded, the request uncounted too
            _refund(usage, reservation)
            return
        if type(used_tokens) is not int or not 0 <= used_tokens <= MAX_LIMIT:
            used_tokens = clamp_tokens(used_tokens)
        delta = used_tokens - reserved
        if not delta:  # the estimate was right
            return
        if bucket == usage.pruned and day == usage.day:  # counts with the pending ones
            usage.pending_tokens += delta
            return
        usage.room = _CLOSED  # the counts changed under the room: the next checks in full
        minute_tokens = usage.minute_tokens
        if bucket in minute_tokens:  # else it left the window: nothing to correct there
            minute_tokens[bucket] += delta
            usage.tokens_in_minute += delta
        if usage.day == day:
            usage.day_tokens += delta

    async def record(self, unit: str, signal: Signal) -> KeyStatus:
        status = self._status.get(unit, OK_STATUS)
        new = transition(status, signal, self.clock(), self.policy)
        if new is not status:
            self._status[unit] = new
            usage = self._usage.get(unit)
            if usage is not None:
                usage.room = _CLOSED  # the next reservation checks the new state in full
        return new

    async def status(self, unit: str) -> KeyStatus:
        return self._status.get(unit, OK_STATUS)

    async def snapshot(self, candidates: Sequence[Candidate]) -> list[UnitView]:
        now = self.clock()
        views = []
        for c in candidates:
            usage = self._usage.get(c.unit)
            counts = (0, 0, 0, 0, 0)
            if usage is not None:
                _prune(usage, now, c.timezone)
                counts = (
                    sum(usage.minute_requests.values()),
                    sum(usage.minute_tokens.values()),
                    usage.day_requests,
                    usage.day_tokens,
                    len(usage.leases),
                )
            views.append(unit_view(c, self._status.get(c.unit, OK_STATUS), counts, now))
        return views

    async def close(self) -> None:
        return None


def _fits(usage: _Usage, c: Candidate, tokens: int, now: float) -> bool:
    """Whether the fast path may take the reservation: it fits in the room left at the last
    full check, in the same bucket and day, for the same limits."""
    return (
        usage.pending < usage.room
        and usage.pending_tokens + tokens <= usage.token_room
        and usage.fresh_from <= now < usage.fresh_until
        and usage.limits == c.limits
    )


def _counted(usage: _Usage, unit: str, tokens: int) -> Reservation:
    """The fast path's reservation: it fits in the room left at the last full check (within the
    same bucket and day), so it is only counted as pending."""
    pending = usage.pending + 1
    pending_tokens = usage.pending_tokens + tokens
    usage.pending, usage.pending_tokens = pending, pending_tokens
    left = (usage.room - pending) * usage.per_request
    if (share := (usage.token_room - pending_tokens) * usage.per_token) < left:
        left = share
    return _new_tuple(Reservation, (unit, "", tokens, usage.pruned, usage.day, left, LOCAL_BACKEND))


def _refund(usage: _Usage, reservation: Reservation) -> None:
    """A reservation whose request was never sent: its request and tokens given back."""
    _, _, reserved, bucket, day, _, _ = reservation
    if bucket == usage.pruned and day == usage.day:  # counts with the pending ones
        usage.pending -= 1
        usage.pending_tokens -= reserved
        return
    usage.room = _CLOSED  # the counts changed under the room: the next checks in full
    if bucket in usage.minute_tokens:
        usage.minute_tokens[bucket] -= reserved
        usage.tokens_in_minute -= reserved
        usage.minute_requests[bucket] -= 1
        usage.requests_in_minute -= 1
    if usage.day == day:
        usage.day_tokens -= reserved
        usage.day_requests -= 1


def _counts(usage: _Usage) -> Counts:
    return (
        usage.requests_in_minute,
        usage.tokens_in_minute,
        usage.day_requests,
        usage.day_tokens,
        len(usage.leases),
    )


def _buckets(usage: _Usage) -> list[tuple[int, int, int]]:
    tokens = usage.minute_tokens
    return [(bucket, n, tokens.get(bucket, 0)) for bucket, n in usage.minute_requests.items()]


def _fold(usage: _Usage) -> None:
    """The fast path's pending counts into the windows' (bucket `pruned` of `day`); the room
    left stays what it was."""
    requests, tokens = usage.pending, usage.pending_tokens
    if requests or tokens:
        bucket = usage.pruned
        usage.minute_requests[bucket] = usage.minute_requests.get(bucket, 0) + requests
        usage.minute_tokens[bucket] = usage.minute_tokens.get(bucket, 0) + tokens
        usage.requests_in_minute += requests
        usage.tokens_in_minute += tokens
        usage.day_requests += requests
        usage.day_tokens += tokens
        usage.pending = usage.pending_tokens = 0
        usage.room -= requests  # still what is left: counted now, no longer pending
        usage.token_room -= tokens


def _reset_room(usage: _Usage, limits: tuple[int, int, int, int, int], plain: bool) -> None:
    """The fast path's room from the full counts (folded): the least left in any window.
    `plain`: the key's state is ok (else every reservation is checked in full)."""
    rpm, rpd, tpm, tpd, parallel = usage.limits = limits
    if parallel or not plain:  # slots are leased one by one
        usage.room = _CLOSED
        return
    usage.room, usage.per_request = _least_room(
        rpm, usage.requests_in_minute, rpd, usage.day_requests
    )
    usage.token_room, usage.per_token = _least_room(
        tpm, usage.tokens_in_minute, tpd, usage.day_tokens
    )


def _least_room(
    minute_limit: int, minute_used: int, day_limit: int, day_used: int
) -> tuple[int, float]:
    """(what is left in the fuller of a minute and a day window, 1 / that window's limit);
    a window of limit 0 is none."""
    room, per = _UNLIMITED_ROOM, 1 / _UNLIMITED_ROOM
    if minute_limit:
        room, per = minute_limit - minute_used, 1 / minute_limit
    if day_limit and day_limit - day_used < room:
        room, per = day_limit - day_used, 1 / day_limit
    return room, per


def _prune(usage: _Usage, now: float, timezone: str | None) -> None:
    """Drop what no longer counts at `now`: minute buckets older than a minute (looked at only
    when the bucket changed since the last time), expired leases, a day that ended. Folds the
    pending counts first: they belong to the bucket and day pruned last."""
    _fold(usage)
    bucket = int(now // BUCKET_S)
    if bucket != usage.pruned:
        usage.pruned = bucket
        oldest = bucket - LIVE_BUCKETS + 1
        requests, tokens = usage.minute_requests, usage.minute_tokens
        if requests and min(requests) < oldest:
            for stale in [b for b in requests if b < oldest]:
                usage.requests_in_minute -= requests.pop(stale)
        if tokens and min(tokens) < oldest:
            for stale in [b for b in tokens if b < oldest]:
                usage.tokens_in_minute -= tokens.pop(stale)
    if usage.leases:
        for rid in [rid for rid, expiry in usage.leases.items() if expiry <= now]:
            del usage.leases[rid]
    if not usage.day <= now < usage.day_end:
        day, usage.day_end = day_window(now, timezone)
        if day != usage.day:
            usage.day, usage.day_requests, usage.day_tokens = day, 0, 0
    usage.fresh_from = max(bucket * BUCKET_S, usage.day)
    usage.fresh_until = min((bucket + 1) * BUCKET_S, usage.day_end)
