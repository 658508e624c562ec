"""The key pool in the attempt loop (issue 13): headroom order, reserve before, learn and settle
after.

    walk = await pool.walk(route, lambda: balancer.candidates(route), ctx, body, headers)
    while (picked := await walk.next()) is not None:       # one reservation per attempt
        target, key, reservation = picked
        ... the attempt ...
        await pool.after(call, reservation, ctx, answered, walk)   # learn, pin, settle
    # walk.start/next raise the 429 when every key is out (after queue_timeout_s)

Each (target, key) is a ledger unit `"<key name>|<upstream model>"` with its limits resolved
once, at start-up (provider < key < model entry). With no `limits:` anywhere and nothing
learned, `active` is False and the dispatcher does not come here at all: the hot path of a
gateway without quotas is what it was. A 429, 401/403 or per-day quota an upstream sends
turns it on (`learn`), so learned states are honoured from the next request on.

With Redis the request pays one round trip (the reservation script); settling runs in the
background and is skipped when nothing needs it (no token limit, no parallel slot, the
request counted as reserved).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping

from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.affinity import Affinity
from apex_ai_proxy.dispatch.failures import Call
from apex_ai_proxy.errors import AllRateLimited
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.keypool import (
    Candidate,
    HeadroomView,
    Ledger,
    Limits,
    Policy,
    Refusal,
    Reservation,
    Signal,
    Verdict,
    effective_state,
    open_ledger,
    read_signal,
    resolve_limits,
)
from apex_ai_proxy.keypool.limits import limit_vector, next_daily_reset
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.routing import Route, Router

log = logging.getLogger("apex_ai_proxy")

Pair = tuple[Target, ApiKey]

#: Gemini's free tier counts its days in Pacific time; other providers' days end at UTC midnight
#: unless `limits.reset_timezone` says otherwise.
DEFAULT_ZONES = {"gemini": "America/Los_Angeles"}
#: Statuses that say the upstream did not count the request against the key.
_NOT_COUNTED = frozenset({401, 403, 429})
#: Output tokens reserved when the request names no max_tokens, and the most ever reserved.
DEFAULT_OUTPUT_ESTIMATE = 256
MAX_OUTPUT_ESTIMATE = 4096
#: A ledger call to Redis that takes longer fails over to local state (then Redis is retried
#: after a backoff).
LEDGER_TIMEOUT_S = 0.5
#: Candidates built lazily (pinned `model#provider` routes): bounded, clients choose names.
MAX_LAZY = 10_000


class KeyPool:
    def __init__(
        self, ledger: Ledger, router: Router, config: Config, health: HealthState | None = None
    ) -> None:
        self.ledger = ledger
        self.health = health
        self.view = HeadroomView()
        self._local = getattr(ledger, "backend", "local") == "local"
        self._providers = config.providers
        self._key_limits = {
            f"{name}#{i}": limits
            for name, provider in config.providers.items()
            for i, (_, limits) in enumerate(provider.keys_with_limits())
        }
        self._candidates: dict[tuple[str, str], Candidate] = {}
        for alias, model in config.models.items():
            route = router.routes.get(alias)
            for entry, target in zip(model.providers, route.targets if route else (), strict=False):
                for key in target.keys:
                    self._build(target, key, entry.limits)
        for route in router.routes.values():
            for target in route.targets:
                for key in target.keys:
                    self.candidate(target, key)
        self.configured = any(any(c.limits) for c in self._candidates.values())
        self._affinity = {
            alias: Affinity(model.affinity_ttl_s, model.affinity_header)
            for alias, model in config.models.items()
            if model.affinity_ttl_s > 0
        }
        #: Read on every request: False = no quota, no affinity: the dispatcher skips the pool.
        self.active = self.configured or bool(self._affinity)
        if self.configured and self._local and health is not None and health.table.shared:
            log.warning(
                "key pool: limits are configured and state is local, but several workers serve: "
                "each counts its own requests against the full limits. Use `state: {backend: "
                "redis}` for limits that hold across workers and replicas."
            )
        self._queue_timeout = {
            alias: model.queue_timeout_s for alias, model in config.models.items()
        }
        self._pending: set[asyncio.Task] = set()

    @classmethod
    def open(cls, config: Config, router: Router, health: HealthState | None = None) -> KeyPool:
        """The pool on the configured state backend (no I/O yet). Learned states follow the
        `retry:` section: a rejected key is out for `auth_failure_cooldown_s`, a 429 that says
        not for how long for `cooldown_base_s`, as HealthState keeps them."""
        retry = config.retry
        policy = Policy(
            rate_limit_default_s=retry.cooldown_base_s,
            invalid_probe_s=retry.auth_failure_cooldown_s,
        )
        state = effective_state(config)
        if state.backend == "redis":
            from apex_ai_proxy.keypool.redis_ledger import RedisLedger
            from apex_ai_proxy.state.redis_client import redis_client

            # The reservation is on every request's path and takes a millisecond: a Redis
            # that does not answer in LEDGER_TIMEOUT_S is treated as down (local state).
            client = redis_client(state.redis_url, command_timeout=LEDGER_TIMEOUT_S)
            ledger: Ledger = RedisLedger(state.redis_url, state.key_prefix, policy, client)
        else:
            ledger = open_ledger(state, policy)
        return cls(ledger, router, config, health)

    # --- candidates, built once -----------------------------------------------------------------

    def _build(self, target: Target, key: ApiKey, entry_limits: Limits | None) -> Candidate:
        provider = self._providers.get(target.provider)
        limits = resolve_limits(
            provider.limits if provider else None, self._key_limits.get(key.name), entry_limits
        )
        zone = limits.reset_timezone
        if zone is None and provider is not None:
            zone = DEFAULT_ZONES.get(provider.kind)
        candidate = Candidate(f"{key.name}|{target.upstream_model}", limit_vector(limits), zone)
        self._candidates[(key.name, target.upstream_model)] = candidate
        return candidate

    def candidate(self, target: Target, key: ApiKey) -> Candidate:
        found = self._candidates.get((key.name, target.upstream_model))
        if found is not None:
            return found
        if len(self._candidates) >= MAX_LAZY:
            return Candidate(f"{key.name}|{target.upstream_model}", (0, 0, 0, 0, 0))
        return self._build(target, key, None)

    def all_candidates(self) -> list[Candidate]:
        return list(self._candidates.values())

    # --- one request ----------------------------------------------------------------------------

    async def walk(
        self,
        route: Route,
        pairs: Callable[[], Iterable[Pair]],
        ctx: RequestContext,
        body: dict,
        headers: Mapping[str, str],
    ) -> Walk:
        """`pairs()`: the balancer's candidates in strategy order (asked again after a wait)."""
        walk = Walk(self, route, pairs, estimate_tokens(ctx, body))
        affinity = self._affinity.get(route.name)
        if affinity is not None:
            session = affinity.session_of(headers, body)
            if session is not None:
                walk.affinity, walk.session = affinity, f"{route.name}\0{session}"
        await walk.start()
        return walk

    async def after(
        self,
        call: Call,
        reservation: Reservation | None,
        ctx: RequestContext,
        answered: bool,
        walk: Walk | None = None,
    ) -> None:
        """What the attempt taught (learned windows, the key's state), then its settlement."""
        status = call.record.status
        upstream = call.upstream
        candidate = self.candidate(call.target, call.key)
        if answered and walk is not None and status is not None and status < 400:
            walk.answered_by(candidate.unit)
        if status is not None and upstream is not None:
            now = time.time()
            signal = read_signal(
                status,
                upstream.headers,
                call.error_body,
                now,
                lambda at: next_daily_reset(at, candidate.timezone),
            )
            if signal.verdict is not Verdict.OK or signal.requests or signal.tokens:
                await self._note(candidate.unit, signal, now)
        if reservation is not None:
            used = _used_tokens(status, answered, ctx, reservation)
            await self._settle(reservation, candidate, used)

    async def learn(self, call: Call) -> None:
        """A failure seen while the pool is off: a quota signal turns it on."""
        status = call.record.status
        if status not in (401, 403, 429) or call.upstream is None:
            return
        candidate = self.candidate(call.target, call.key)
        now = time.time()
        signal = read_signal(
            status,
            call.upstream.headers,
            call.error_body,
            now,
            lambda at: next_daily_reset(at, candidate.timezone),
        )
        if signal.verdict in (Verdict.RATE_LIMITED, Verdict.QUOTA_EXHAUSTED, Verdict.INVALID):
            await self._note(candidate.unit, signal, now)
            self.active = True

    async def _note(self, unit: str, signal: Signal, now: float) -> None:
        self.view.note_signal(unit, signal)
        new = await self.ledger.record(unit, signal)
        self.view.note_status(unit, new, now)

    async def _settle(
        self, reservation: Reservation, candidate: Candidate, used: int | None
    ) -> None:
        _, _, tpm, tpd, parallel = candidate.limits
        if used is not None and not (tpm or tpd or parallel):
            return  # counted as reserved; no token window or slot depends on the real count
        if self._local:
            await self.ledger.settle(reservation, used)  # no I/O: it never suspends
            return
        # Redis: off the request's path (its one round trip is the reservation).
        task = asyncio.get_running_loop().create_task(self.ledger.settle(reservation, used))
        self._pending.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("key pool: settling failed (%s)", type(task.exception()).__name__)

    async def release(self, reservation: Reservation, candidate: Candidate) -> None:
        """A reservation whose request was never sent."""
        await self._settle(reservation, candidate, None)

    def health_frees_at(self, route: Route) -> float | None:
        """Epoch time the first of the route's keys that HealthState cools down (a 429's
        Retry-After, a failure) is back: the balancer leaves those out of the walk, but one
        may free up before any the pool knows of."""
        if self.health is None:
            return None
        now_mono = time.monotonic()
        soonest = min(
            (
                until
                for target in route.targets
                for key in target.keys
                if (until := self.health.unit(key.name).cooldown_until) > now_mono
            ),
            default=None,
        )
        return None if soonest is None else time.time() + (soonest - now_mono)

    def queue_timeout(self, route: Route) -> float:
        return self._queue_timeout.get(route.name, 0.0)

    def headers(self, units: Iterable[Candidate]) -> dict[str, str]:
        """Pool-level `x-ratelimit-*-requests` for the route: the sum of the configured rpm of its
        keys and this process's estimate of what is left of it."""
        limit = remaining = 0
        now = time.time()
        for c in units:
            rpm = c.limits[0]
            if not rpm:
                return {}
            limit += rpm
            remaining += int(self.view.headroom(c.unit, now) * rpm)
        return {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
        }

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await self.ledger.close()


class Walk:
    """One request's way through the pool: headroom order, then one reservation per attempt."""

    def __init__(
        self, pool: KeyPool, route: Route, pairs: Callable[[], Iterable[Pair]], tokens: int
    ) -> None:
        self.pool = pool
        self.route = route
        self._pairs = pairs
        self.listed: list[tuple[Candidate, Pair]] = []
        self.tokens = tokens
        self.remaining: list[Candidate] = []
        #: Passed over by a reservation (the ledger found them out): asked once more at the end,
        #: so a walk that ends on them ends with their Refusal and its retry_at.
        self.skipped: list[Candidate] = []
        self.pairs: dict[str, Pair] = {}
        self.reserved = 0  # reservations handed out
        self.refusal: Refusal | None = None  # the last: every candidate left was out
        self.deadline = time.monotonic() + pool.queue_timeout(route)
        self.affinity: Affinity | None = None
        self.session: str | None = None  # the conversation, when the model pins them

    async def start(self) -> None:
        """Candidates in headroom order; when every one is known to be out, wait for the first
        to be back (queue_timeout_s) or refuse with the 429."""
        while True:
            self._list()
            if self.listed:
                choice = self.pool.view.order(self.units(), time.time())
                if choice.order:
                    self.remaining = self._pinned_first(choice.order)
                    return
                await self._wait_or_refuse(choice.retry_at or time.time())
                continue
            # Every key cooling down (HealthState): wait only if the model queues; otherwise
            # the dispatcher's usual answer for that.
            health = self.pool.health_frees_at(self.route)
            if health is None or not self._may_wait(health):
                return
            await asyncio.sleep(health - time.time())

    def answered_by(self, unit: str) -> None:
        """The conversation stays with the key that answered it."""
        if self.session is not None and self.affinity is not None:
            self.affinity.pin(self.session, unit)

    def _pinned_first(self, order: list[Candidate]) -> list[Candidate]:
        if self.session is None:
            return order
        unit = self.affinity.pinned(self.session) if self.affinity is not None else None
        if unit is None or order[0].unit == unit:
            return order
        pinned = [c for c in order if c.unit == unit]
        return pinned + [c for c in order if c.unit != unit] if pinned else order

    def _list(self) -> None:
        candidate = self.pool.candidate
        self.listed = [(candidate(t, k), (t, k)) for t, k in self._pairs()]
        self.pairs = {}
        for unit, pair in self.listed:
            self.pairs.setdefault(unit.unit, pair)

    async def next(self) -> tuple[Target, ApiKey, Reservation] | None:
        pool = self.pool
        while self.remaining or self.skipped:
            if not self.remaining:
                self.remaining, self.skipped = self.skipped, []
            lease = self.pairs[self.remaining[0].unit][0].adapter.config.timeout
            result = await pool.ledger.reserve(self.remaining, self.tokens, lease_s=lease)
            if isinstance(result, Reservation):
                pool.view.note_reservation(result)
                index = next(i for i, c in enumerate(self.remaining) if c.unit == result.unit)
                self.skipped += self.remaining[:index]
                self.remaining = self.remaining[index + 1 :]
                self.reserved += 1
                target, key = self.pairs[result.unit]
                return target, key, result
            pool.view.note_refusal(self.remaining, result)
            self.refusal = result
            if self.reserved:
                return None  # the attempts made decide the answer (their failures are listed)
            await self._wait_or_refuse(result.retry_at)
            await self.start()  # asked afresh: keys may be back from their cooldowns too
        return None

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
        return [c for c, _ in self.listed]

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
        return wait > 0 and time.monotonic() + wait <= self.deadline


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


def estimate_tokens(ctx: RequestContext, body: dict) -> int:
    """What to reserve before the call: the prompt at ~4 bytes a token, plus the output asked
    for (capped: an oversized max_tokens would hold tpm that is never used)."""
    asked = body.get("max_tokens") or body.get("max_completion_tokens")
    if asked is None:
        asked = body.get("max_output_tokens")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked <= 0:
        asked = DEFAULT_OUTPUT_ESTIMATE
    return ctx.bytes_in // 4 + min(asked, MAX_OUTPUT_ESTIMATE)


def _used_tokens(
    status: int | None, answered: bool, ctx: RequestContext, reservation: Reservation
) -> int | None:
    """The tokens to settle with; None when the upstream did not count the request (never
    reached, refused with 429/401/403, or failed with a 5xx: an endpoint's fault is not
    charged to the key)."""
    if status is None or status >= 500 or status in _NOT_COUNTED:
        return None
    if status >= 400:
        return 0
    usage = ctx.usage if answered else None
    return usage.total_tokens if usage is not None else reservation.tokens
