"""The quota ledger of `serve --workers N` with local state: one table in memory shared by fork.

Each worker is its own process; a ledger in each would let every worker spend a key's whole
limit. So `serve` maps one table before it forks (`prepare`), and every worker's ledger counts
in it: exact across the workers of one machine, as Redis is across machines.

One slot per unit (key × model, or `vk:<id>`), found by a 64-bit digest of the unit's name
(open addressing; slots are never freed, the table holds CAPACITY units; a unit that finds it
full is counted by the worker alone, with a warning). A slot is int64 words::

    0 tag   1 day start   2 day requests   3 day tokens   4 parallel slots held beyond LEASES
    5 state (index in STATES)   6 until (µs since the epoch)   7-14 reason (64 bytes, utf-8)
    15 -    16… 13 minute buckets (LIVE_BUCKETS) as (bucket number, requests, tokens)
    then LEASES parallel slots, each its lease's end (µs since the epoch; 0 or past: free)

Every check-and-reserve and settle runs under one lock shared by the workers (a POSIX
semaphore: no system call while nobody else holds it), so it is all or nothing like the Redis
script. A worker killed inside that lock would leave it held: the others wait at most
LOCK_WAIT_S for it, then count without it (a warning says so) rather than stop serving. The
parallel slots of a worker that died free themselves when their lease ends, like Redis's; only
slots beyond the first LEASES held at once are counted without a lease.
A status's list of recent outcomes is each worker's own.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from apex_ai_proxy.keypool.ledger import (
    DEFAULT_LEASE_S,
    Candidate,
    InProcessLedger,
    LocalLedger,
    Refusal,
    Reservation,
    UnitView,
    clamp_lease,
    new_reservation_id,
    settle_delta,
    unit_view,
)
from apex_ai_proxy.keypool.limits import (
    BUCKET_S,
    LIVE_BUCKETS,
    Counts,
    clamp_tokens,
    day_window,
    refused,
    share_left,
)
from apex_ai_proxy.keypool.signals import Signal
from apex_ai_proxy.keypool.state import DEFAULT_POLICY, KeyState, KeyStatus, Policy, transition

log = logging.getLogger("apex_ai_proxy")

CAPACITY = 4096
LOCK_WAIT_S = 0.5
LEASES = 64
_HEAD = 16  # words before the buckets
_LEASE0 = _HEAD + 3 * LIVE_BUCKETS  # the first lease word
_WORDS = _LEASE0 + LEASES
_SLOT = _WORDS * 8
STATES = list(KeyState)
_REASON = slice(7, 15)  # words holding the reason
_LEASED, _OVERFLOW = "p", "o"  # a reservation id holding a parallel slot: "p<index>:…", "o:…"


class SharedTable:
    """The mapping and its lock; made before the fork, inherited by every worker."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.memory = mmap.mmap(-1, capacity * _SLOT)
        self.words = memoryview(self.memory).cast("q")
        self.lock = multiprocessing.get_context("fork").Lock()

    @contextmanager
    def locked(self) -> Iterator[None]:
        if self.lock.acquire(timeout=LOCK_WAIT_S):
            try:
                yield
            finally:
                self.lock.release()
            return
        log.warning("key pool: the workers' quota lock was not released in %ss", LOCK_WAIT_S)
        yield


_prepared: SharedTable | None = None


def prepare(capacity: int = CAPACITY) -> SharedTable:
    """Called by `serve --workers N` before it forks: the workers' local ledgers share it."""
    global _prepared
    _prepared = SharedTable(capacity)
    return _prepared


def prepared() -> SharedTable | None:
    return _prepared


def _tag(unit: str) -> int:
    digest = hashlib.blake2b(unit.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) | 1  # never 0: 0 is an empty slot


class SharedLedger(InProcessLedger):
    """Same contract as LocalLedger (keypool/ledger.py), counted in the shared table."""

    def __init__(self, table: SharedTable, policy: Policy = DEFAULT_POLICY) -> None:
        self.table = table
        self.policy = policy
        self.own = LocalLedger(policy)  # units the table has no room for
        self._slots: dict[str, int | None] = {}  # unit → first word of its slot
        self._recent: dict[str, tuple[tuple[float, bool], ...]] = {}
        self._warned = False

    # --- slots ----------------------------------------------------------------------------------

    def _slot(self, unit: str) -> int | None:
        """The unit's slot (claimed if new); None: the table is full. Call under the lock."""
        found = self._slots.get(unit, -1)
        if found != -1:
            return found
        words, capacity, tag = self.table.words, self.table.capacity, _tag(unit)
        for probe in range(capacity):
            base = ((tag + probe) % capacity) * _WORDS
            if words[base] == tag:
                break
            if words[base] == 0:
                words[base] = tag
                break
        else:
            base = None
            if not self._warned:
                self._warned = True
                log.warning(
                    "key pool: the workers' shared quota table is full (%d units): new units "
                    "are counted by each worker alone",
                    capacity,
                )
        self._slots[unit] = base
        return base

    # --- the ledger -----------------------------------------------------------------------------

    def reserve_now(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal:
        now = time.time()
        tokens = clamp_tokens(tokens)
        earliest, first_reason = float("inf"), ""
        with self.table.locked():
            for c in candidates:
                base = self._slot(c.unit)
                if base is None:
                    return self.own.reserve_now([c], tokens, lease_s)
                blocked, reason = self._blocked(base, c, tokens, now)
                if blocked is None:
                    return self._take(base, c, tokens, now, lease_s)
                earliest = min(earliest, blocked)
                first_reason = first_reason or reason
        return Refusal(earliest if candidates else now, first_reason or "no_candidates")

    def _minute(self, base: int, now: float) -> list[tuple[int, int, int]]:
        """The live buckets (number, requests, tokens) of the slot."""
        words = self.table.words
        oldest = int(now // BUCKET_S) - LIVE_BUCKETS + 1
        live = []
        for i in range(base + _HEAD, base + _WORDS, 3):
            if words[i] >= oldest and (words[i + 1] or words[i + 2]):
                live.append((words[i], words[i + 1], words[i + 2]))
        return live

    def _day(self, base: int, c: Candidate, now: float) -> tuple[int, float]:
        """The current day of the slot, its counts reset when a new day began."""
        start, end = day_window(now, c.timezone)
        words = self.table.words
        if words[base + 1] != start:
            words[base + 1], words[base + 2], words[base + 3] = start, 0, 0
        return start, end

    def _blocked(
        self, base: int, c: Candidate, tokens: int, now: float
    ) -> tuple[float | None, str]:
        status = self._status_of(base, c.unit)
        if not status.available(now):
            return status.until, status.state.value
        live = self._minute(base, now)
        _, day_end = self._day(base, c, now)
        blocked = refused(
            c.limits, tokens, self._counts(base, live, c, now), lambda: live, day_end, now
        )
        return blocked if blocked is not None else (None, "")

    def _counts(
        self, base: int, live: list[tuple[int, int, int]], c: Candidate, now: float
    ) -> Counts:
        """The slot's counts (its day already current); parallel slots only where limited."""
        words = self.table.words
        return (
            sum(r for _, r, _ in live),
            sum(t for _, _, t in live),
            words[base + 2],
            words[base + 3],
            self._in_flight(base, now) if c.limits[4] else 0,
        )

    def _in_flight(self, base: int, now: float) -> int:
        words, now_us = self.table.words, now * 1e6
        live = sum(1 for i in range(base + _LEASE0, base + _WORDS) if words[i] > now_us)
        return live + words[base + 4]

    def _hold(self, base: int, now: float, lease_s: float) -> str:
        """A parallel slot: a free lease word (its end written), else one counted beyond."""
        words, now_us = self.table.words, now * 1e6
        for i in range(base + _LEASE0, base + _WORDS):
            if words[i] <= now_us:
                words[i] = int((now + clamp_lease(lease_s)) * 1e6)
                return f"{_LEASED}{i - base - _LEASE0}:"
        words[base + 4] += 1
        return f"{_OVERFLOW}:"

    def _take(
        self, base: int, c: Candidate, tokens: int, now: float, lease_s: float
    ) -> Reservation:
        words = self.table.words
        bucket = int(now // BUCKET_S)
        at = base + _HEAD + 3 * (bucket % LIVE_BUCKETS)
        if words[at] != bucket:
            words[at], words[at + 1], words[at + 2] = bucket, 0, 0
        words[at + 1] += 1
        words[at + 2] += tokens
        day, _ = self._day(base, c, now)
        words[base + 2] += 1
        words[base + 3] += tokens
        rid = new_reservation_id()
        if c.limits[4]:
            rid = self._hold(base, now, lease_s) + rid
        state = STATES[words[base + 5]]
        if state is KeyState.INVALID:  # this request is the probe: the next waits an interval
            words[base + 6] = int((now + self.policy.invalid_probe_s) * 1e6)
        return Reservation(c.unit, rid, tokens, bucket, day, self._headroom(base, c, now), "local")

    def _headroom(self, base: int, c: Candidate, now: float) -> float:
        if not any(c.limits[:4]):
            return 1.0
        return share_left(c.limits, self._counts(base, self._minute(base, now), c, now))

    def settle_now(self, reservation: Reservation, used_tokens: int | None) -> None:
        base = self._slots.get(reservation.unit)
        if base is None:
            self.own.settle_now(reservation, used_tokens)
            return
        delta = settle_delta(reservation, used_tokens)
        refund = used_tokens is None
        words = self.table.words
        with self.table.locked():
            at = base + _HEAD + 3 * (reservation.bucket % LIVE_BUCKETS)
            if words[at] == reservation.bucket:
                words[at + 2] += delta
                words[at + 1] -= refund
            if words[base + 1] == reservation.day:
                words[base + 3] += delta
                words[base + 2] -= refund
            self._release(base, reservation.id)

    def _release(self, base: int, rid: str) -> None:
        words = self.table.words
        if rid.startswith(_LEASED):
            index = int(rid[1 : rid.index(":")])
            words[base + _LEASE0 + index] = 0
        elif rid.startswith(_OVERFLOW) and words[base + 4] > 0:
            words[base + 4] -= 1

    # --- learned states -------------------------------------------------------------------------

    def _status_of(self, base: int, unit: str) -> KeyStatus:
        words = self.table.words
        state = STATES[words[base + 5]]
        recent = self._recent.get(unit, ())
        if state is KeyState.OK:
            return KeyStatus(recent=recent) if recent else _OK
        reason = bytes(self.table.memory[(base + 7) * 8 : (base + 15) * 8]).rstrip(b"\0")
        return KeyStatus(state, words[base + 6] / 1e6, reason.decode(errors="replace"), recent)

    async def record(self, unit: str, signal: Signal) -> KeyStatus:
        with self.table.locked():
            base = self._slot(unit)
            if base is None:
                return await self.own.record(unit, signal)
            new = transition(self._status_of(base, unit), signal, time.time(), self.policy)
            self._recent[unit] = new.recent
            words = self.table.words
            words[base + 5] = STATES.index(new.state)
            words[base + 6] = int(new.until * 1e6)
            reason = new.reason.encode()[:64].ljust(64, b"\0")
            self.table.memory[(base + 7) * 8 : (base + 15) * 8] = reason
        return new

    async def status(self, unit: str) -> KeyStatus:
        with self.table.locked():
            base = self._slot(unit)
            if base is None:
                return await self.own.status(unit)
            return self._status_of(base, unit)

    async def snapshot(self, candidates: Sequence[Candidate]) -> list[UnitView]:
        now = time.time()
        views = []
        with self.table.locked():
            for c in candidates:
                base = self._slot(c.unit)
                if base is None:
                    views += await self.own.snapshot([c])
                    continue
                live = self._minute(base, now)
                self._day(base, c, now)
                words = self.table.words
                counts = (
                    sum(r for _, r, _ in live),
                    sum(t for _, _, t in live),
                    words[base + 2],
                    words[base + 3],
                    self._in_flight(base, now),
                )
                views.append(unit_view(c, self._status_of(base, c.unit), counts, now))
        return views

    async def close(self) -> None:
        return None


_OK = KeyStatus()
