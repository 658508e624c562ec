"""The key pool in the attempt loop (issue 13): headroom order, reserve before, learn and settle
after.

    offered = list(balancer.candidates(route))
    first = pool.take_first(route, offered, tokens)    # the usual request: no walk
    walk = pool.walk(route, offered, balancer.candidates, tokens, body, headers)  # else
    if not walk.ready:                                     # every key known to be out
        await walk.wait()                                  # queue_timeout_s, else the 429
    while (picked := walk.take_now() or await walk.next()) is not None:  # one reservation
        target, key, reservation = picked                                 # per attempt
        ... the attempt ...
        learned = pool.after(call, reservation, ctx, answered, walk)   # pin, settle
        if learned is not None:
            await learned                                               # learn
    # walk.wait/next raise the 429 when every key is out (after queue_timeout_s)

Each (target, key) is a ledger unit `"<scope>#<key fingerprint>|<upstream model>"` (`unit_id`:
the same key keeps its unit wherever it stands in the list, across reloads and replicas; shown
as `"<key name>|<model>"`, e.g. `openai#2|gpt-4o`, by `names`) with its limits resolved
once, at start-up (provider < key < model entry). With no `limits:` anywhere and nothing
learned, `active` is False and the dispatcher does not come here at all: the hot path of a
gateway without quotas is what it was. A 429, 401/403 or per-day quota an upstream sends
turns it on (`learn`), so learned states are honoured from the next request on.

With Redis the request pays one round trip (the reservation script); settling runs in the
background and is skipped when nothing needs it (no token limit, no parallel slot, the
request counted as reserved). With local state nothing on the way suspends: reservation and
settlement are plain calls on the LocalLedger, and an answer without rate-limit headers is
not parsed for a signal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence

from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.affinity import Affinity
from apex_ai_proxy.dispatch.failures import Call
from apex_ai_proxy.dispatch.walk import Pair, Walk
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.keypool import (
    Candidate,
    HeadroomView,
    KeyState,
    Ledger,
    Limits,
    Policy,
    Refusal,
    Reservation,
    Signal,
    UnitView,
    Verdict,
    effective_state,
    open_ledger,
    read_signal,
    resolve_limits,
)
from apex_ai_proxy.keypool.ledger import InProcessLedger
from apex_ai_proxy.keypool.limits import limit_vector, next_daily_reset
from apex_ai_proxy.keypool.signals import says_nothing
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.routing import Route, Router

log = logging.getLogger("apex_ai_proxy")

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


def unit_id(key: ApiKey, model: str) -> str:
    """The ledger's name of a key × model: its scope (provider, or provider@alias[i]) and a
    fingerprint of the secret, so a key is the same unit wherever it stands in the list; the
    fingerprint (salted SHA-256, 48 bits) tells keys apart and gives none away."""
    scope, _, _ = key.name.rpartition("#")
    if not key.secret:
        return f"{key.name}|{model}"
    digest = hashlib.sha256(b"apex-key-pool\0" + key.secret.encode("utf-8", "surrogateescape"))
    return f"{scope}#{digest.hexdigest()[:12]}|{model}"


def open_pool_ledger(config: Config) -> Ledger:
    """The ledger on the configured state backend (no I/O yet). Learned states follow the
    `retry:` section: a rejected key is out for `auth_failure_cooldown_s`, a 429 that says not
    for how long for `cooldown_base_s`, as HealthState keeps them."""
    retry = config.retry
    policy = Policy(
        rate_limit_default_s=retry.cooldown_base_s,
        invalid_probe_s=retry.auth_failure_cooldown_s,
    )
    state = effective_state(config)
    if state.backend != "redis":
        return open_ledger(state, policy)
    from apex_ai_proxy.keypool.redis_ledger import RedisLedger
    from apex_ai_proxy.state.redis_client import redis_client

    # The reservation is on every request's path and takes a millisecond: a Redis that does
    # not answer in LEDGER_TIMEOUT_S is treated as down (local state).
    client = redis_client(state.redis_url, command_timeout=LEDGER_TIMEOUT_S)
    return RedisLedger(state.redis_url, state.key_prefix, policy, client)


class KeyPool:
    def __init__(
        self, ledger: Ledger, router: Router, config: Config, health: HealthState | None = None
    ) -> None:
        self.ledger = ledger
        self.health = health
        self.view = HeadroomView()
        #: The in-process ledger, called without a coroutine; None: another backend (Redis).
        self.local_ledger = ledger if isinstance(ledger, InProcessLedger) else None
        #: One candidate reserved without a coroutine when the ledger can (in process; with
        #: Redis from this process's grant, else None): the walk-less request (take_first).
        self._reserve_alone: Callable[[Candidate, int], Reservation | Refusal | None] | None = (
            self.local_ledger.reserve_one
            if self.local_ledger is not None
            else getattr(ledger, "reserve_nowait", None)
        )
        self._providers = config.providers
        self._key_limits = {
            f"{name}#{i}": limits
            for name, provider in config.providers.items()
            for i, (_, limits) in enumerate(provider.keys_with_limits())
        }
        #: (key name, upstream model) → its Candidate; the walk reads it on every request.
        self.known: dict[tuple[str, str], Candidate] = {}
        self.names: dict[str, str] = {}  # unit → "key name|model", as people see it
        for alias, model in config.models.items():
            route = router.routes.get(alias)
            for entry, target in zip(model.providers, route.targets if route else (), strict=False):
                for key in target.keys:
                    self._build(target, key, entry.limits)
        for route in router.routes.values():
            for target in route.targets:
                for key in target.keys:
                    self.candidate(target, key)
        self.configured = any(any(c.limits) for c in self.known.values())
        shared = ledger if hasattr(ledger, "get_pin") else None  # Redis: pins for all replicas
        self._affinity = {
            alias: Affinity(model.affinity_ttl_s, model.affinity_header, shared)  # type: ignore[arg-type]
            for alias, model in config.models.items()
            if model.affinity_ttl_s > 0
        }
        self.learned = False  # an upstream's quota signal turned the pool on
        #: Read on every request: False = no quota, no affinity: the dispatcher skips the pool.
        self.active = self.configured or bool(self._affinity)
        self._queue_timeout = {
            alias: model.queue_timeout_s for alias, model in config.models.items()
        }
        self._pending: set[asyncio.Task] = set()

    @classmethod
    def open(cls, config: Config, router: Router, health: HealthState | None = None) -> KeyPool:
        """A pool on its own ledger (the pool command); the gateway keeps one ledger across
        reloads and builds the pool on it."""
        return cls(open_pool_ledger(config), router, config, health)

    def take_over(self, previous: KeyPool) -> None:
        """A config reload: what the previous pool of this process learned (its view of the
        units, by name: unchanged keys keep it) and its settlements still running."""
        self.view = previous.view
        self._pending = previous._pending
        for alias, affinity in self._affinity.items():
            if alias in previous._affinity:
                affinity.take_over(previous._affinity[alias])
        if previous.learned:
            self.learned = self.active = True

    # --- candidates, built once -----------------------------------------------------------------

    def _build(self, target: Target, key: ApiKey, entry_limits: Limits | None) -> Candidate:
        provider = self._providers.get(target.provider)
        limits = resolve_limits(
            provider.limits if provider else None, self._key_limits.get(key.name), entry_limits
        )
        zone = limits.reset_timezone
        if zone is None and provider is not None:
            zone = DEFAULT_ZONES.get(provider.kind)
        unit = unit_id(key, target.upstream_model)
        candidate = Candidate(unit, limit_vector(limits), zone, target.adapter.config.timeout)
        self.known[(key.name, target.upstream_model)] = candidate
        self.names.setdefault(unit, f"{key.name}|{target.upstream_model}")
        return candidate

    def candidate(self, target: Target, key: ApiKey) -> Candidate:
        found = self.known.get((key.name, target.upstream_model))
        if found is not None:
            return found
        if len(self.known) >= MAX_LAZY:
            return Candidate(unit_id(key, target.upstream_model), (0, 0, 0, 0, 0), None)
        return self._build(target, key, None)

    def all_candidates(self) -> list[Candidate]:
        return list(self.known.values())

    async def snapshot(self) -> dict[str, UnitView]:
        """Every key × model of the config by its shown name ("openai#2|gpt-4o")."""
        views = await self.ledger.snapshot(self.all_candidates())
        return {self.names.get(v.unit, v.unit): v for v in views}

    # --- one request ----------------------------------------------------------------------------

    def take_first(
        self, route: Route, offered: Sequence[Pair], tokens: int
    ) -> tuple[Target, ApiKey, Reservation, dict[str, str]] | None:
        """The first attempt of the usual request, without a walk: the key the walk would try
        first (most headroom, not known to be out, not on a degraded endpoint), reserved when
        the ledger has room for it now (local state; with Redis, in this process's grant) and
        the model pins no conversations. Its key, the reservation and the pool's `headers`;
        None: the walk decides (a refusal to wait on, a round trip, a degraded endpoint)."""
        reserve = self._reserve_alone
        if reserve is None or not offered or (self._affinity and route.name in self._affinity):
            return None
        known = self.known
        if len(offered) == 1:  # one key: nothing to choose (a key the view knows to be out the
            # ledger refuses too: the view learned it from its refusals and states)
            target, key = offered[0]
            candidate = known.get((key.name, target.upstream_model)) or self.candidate(target, key)
            units: Sequence[Candidate] = (candidate,)
        else:
            units = [
                known.get((key.name, target.upstream_model)) or self.candidate(target, key)
                for target, key in offered
            ]
            index = self.view.first(units)
            if index is None:
                return None  # every one known to be out: the walk waits or answers 429
            candidate = units[index]
            target, key = offered[index]
            health = self.health
            if health is not None and health.endpoint_degraded(target.endpoint(), time.monotonic()):
                return None  # the walk puts it after the healthy endpoints' keys
        result = reserve(candidate, tokens)
        if type(result) is not Reservation:
            return None  # the walk asks again (Redis: a round trip), and waits or answers 429
        self.view.note_reservation(result)
        return target, key, result, self.headers(units)

    def walk(
        self,
        route: Route,
        offered: Sequence[Pair],
        pairs: Callable[[Route], Iterable[Pair]],
        tokens: int,
        body: dict,
        headers: Mapping[str, str],
    ) -> Walk:
        """`offered`: the balancer's candidates in strategy order; `pairs(route)` asks it again
        after a wait. When the walk is not `ready` (every key known to be out), `walk.wait()`."""
        affinity = self._affinity.get(route.name) if self._affinity else None
        if affinity is not None:
            session = affinity.session_of(headers, body)
            if session is not None:
                pinned = f"{route.name}\0{session}"
                return Walk(self, route, offered, pairs, tokens, affinity, pinned)
        return Walk(self, route, offered, pairs, tokens)

    def after(
        self,
        call: Call,
        reservation: Reservation | None,
        ctx: RequestContext,
        answered: bool,
        walk: Walk | None = None,
    ) -> Coroutine[None, None, None] | None:
        """The attempt's settlement, and what it taught (learned windows, the key's state):
        returned to be awaited (the ledger notes it: with Redis a round trip), None when the
        answer says nothing, which is the usual answer."""
        status = call.record.status
        success = status is not None and status < 400
        if reservation is not None:
            used: int | None  # None: the upstream did not count the request
            if success:  # _used_tokens' usual case, inline
                usage = ctx.usage if answered else None
                used = reservation.tokens if usage is None else usage.total_tokens
            else:
                used = _used_tokens(status, answered, ctx, reservation)
            self._settle(reservation, used, call.target, call.key, walk)
        if success and answered and walk is not None and walk.session is not None:
            walk.answered_by(self._candidate_of(call.target, call.key, reservation, walk).unit)
        upstream = call.upstream
        if status is None or upstream is None or says_nothing(status, upstream.headers):
            return None
        candidate = self._candidate_of(call.target, call.key, reservation, walk)
        now = time.time()
        signal = read_signal(
            status,
            upstream.headers,
            call.error_body,
            now,
            lambda at: next_daily_reset(at, candidate.timezone),
        )
        verdict = signal.verdict  # a fault (5xx, timeout): HealthState counts it (faults.py)
        if verdict is Verdict.UPSTREAM_FAULT or (
            verdict is Verdict.OK and not signal.requests and not signal.tokens
        ):
            return None
        return self._note(candidate.unit, signal, now)

    def _candidate_of(
        self, target: Target, key: ApiKey, reservation: Reservation | None, walk: Walk | None
    ) -> Candidate:
        """The attempt's key × model: the walk's, when the reservation was made on it."""
        candidate = walk.reserved_as if walk is not None else None
        if candidate is None or reservation is None or candidate.unit != reservation.unit:
            candidate = self.candidate(target, key)
        return candidate

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
            self.learned = self.active = True

    async def quarantined(self, target: Target, key: ApiKey) -> bool:
        """The key × model is known to be invalid (by any replica, with Redis state: one read,
        on this path only) and its next probe is not due: count_tokens, which reserves nothing
        (upstreams limit counting apart from requests), leaves it alone too."""
        status = await self.ledger.status(self.candidate(target, key).unit)
        return status.state is KeyState.INVALID and not status.available(time.time())

    async def _note(self, unit: str, signal: Signal, now: float) -> None:
        self.view.note_signal(unit, signal)
        new = await self.ledger.record(unit, signal)
        self.view.note_status(unit, new, now)

    def _settle(
        self,
        reservation: Reservation,
        used: int | None,
        target: Target,
        key: ApiKey,
        walk: Walk | None = None,
    ) -> None:
        """Never waits: in process a few additions; with Redis off the request's path (its one
        round trip is the reservation): written to the open connection without waiting for
        the reply, else in a task, and not at all when nothing depends on the real count."""
        local = self.local_ledger
        if local is not None:
            local.settle_now(reservation, used)
            return
        _, _, tpm, tpd, parallel = self._candidate_of(target, key, reservation, walk).limits
        if used is not None and not (tpm or tpd or parallel):
            return  # counted as reserved; no token window or slot depends on the real count
        nowait = getattr(self.ledger, "settle_nowait", None)
        if nowait is not None and nowait(reservation, used):
            return
        task = asyncio.get_running_loop().create_task(self.ledger.settle(reservation, used))
        self._pending.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("key pool: settling failed (%s)", type(task.exception()).__name__)

    def release(self, reservation: Reservation, target: Target, key: ApiKey) -> None:
        """A reservation whose request was never sent."""
        self._settle(reservation, None, target, key)

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

    def headers(self, units: Sequence[Candidate]) -> dict[str, str]:
        """Pool-level `x-ratelimit-*-requests` for the route: the sum of the configured rpm of its
        keys and this process's estimate of what is left of it."""
        counted = self.view.requests_left(units)
        if counted is None:
            return {}
        limit, remaining = counted
        return {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
        }

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await self.ledger.close()


def estimate_tokens(ctx: RequestContext, body: dict) -> int:
    """What to reserve before the call: the prompt at ~4 bytes a token, plus the output asked
    for (capped: an oversized max_tokens would hold tpm that is never used)."""
    asked = body.get("max_tokens") or body.get("max_completion_tokens")
    if asked is None:
        asked = body.get("max_output_tokens")
    if type(asked) is not int or asked <= 0:  # JSON: not a bool, nor a float
        asked = DEFAULT_OUTPUT_ESTIMATE
    return ctx.bytes_in // 4 + (asked if asked < MAX_OUTPUT_ESTIMATE else MAX_OUTPUT_ESTIMATE)


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
