"""The gateway's side of virtual keys, per request:

    identify(given)       auth: which key this is (a cache lookup), or 401 expired / revoked
    admit(ctx, model, n)  before dispatch: allowlist (403), budget (429 insufficient_quota),
                          then RPM / TPM / RPD / max_parallel in the keypool ledger (429)
    finish(ctx)           when the answer has ended: settle the reservation with the real
                          token count, charge the cost estimate to the budget

Limits are the key pool's own ledger (keypool/; Services builds it, the pool and the keys
share it, the pool closes it), unit `vk:<id>`: with `state: {backend: redis}`
one EVALSHA per request checks and reserves every window atomically for all replicas and
workers; with the local backend they hold per process. A key without limits costs no round
trip. A request in flight is never cut: budgets are checked on admission only. A key with
limits sees what is left of them on every answer (virtualkeys/headers.py).

What every request of a key needs from its entry (its ledger unit, header names, metric series)
is worked out on the key's first request after each cache refresh and kept on its VirtualName.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from apex_ai_proxy.errors import AllRateLimited, Forbidden, GatewayError, Unauthorized
from apex_ai_proxy.keypool import Candidate, Ledger, Refusal, Reservation
from apex_ai_proxy.virtualkeys.backend import open_store
from apex_ai_proxy.virtualkeys.cache import KeyCache
from apex_ai_proxy.virtualkeys.config import VirtualKeysConfig
from apex_ai_proxy.virtualkeys.headers import KeyWindows, refusal_headers
from apex_ai_proxy.virtualkeys.metrics import KeyCounters, KeyMetrics
from apex_ai_proxy.virtualkeys.model import VirtualKey, hash_key, looks_like_key

_LEASE_S = 900.0  # a max_parallel slot whose request never settles (a crash) frees after this


class VirtualName(str):
    """The name a virtual key authenticates as (what records show), carrying its entry and what
    each of its requests needs from it, worked out once: one is made per key string and cache
    refresh (KeyCache.seen), not per request."""

    entry: VirtualKey
    valid_until: float  # time.time() from which it is refused (expired; -inf: revoked)
    candidates: tuple[Candidate, ...]  # its limits as the ledger's unit; () without limits
    windows: KeyWindows  # its x-ratelimit-* headers
    counters: KeyCounters  # its counts for /metrics


def _name_of(entry: VirtualKey, metrics: KeyMetrics) -> VirtualName:
    name = VirtualName(entry.name)
    name.entry = entry
    if entry.revoked_at is not None:
        name.valid_until = -math.inf
    else:
        name.valid_until = math.inf if entry.expires_at is None else entry.expires_at
    limits = entry.limits()
    name.candidates = (Candidate("vk:" + entry.id, limits),) if any(limits) else ()
    name.windows = KeyWindows(entry)
    name.counters = metrics.counters(entry.name)
    return name


def virtual_entry(name: Any) -> VirtualKey | None:
    return name.entry if type(name) is VirtualName else None


class InsufficientQuota(GatewayError):
    status = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class VirtualKeys:
    def __init__(self, config: VirtualKeysConfig, ledger: Ledger) -> None:
        """`ledger`: the key pool's (services.ledger). One ledger, one Redis connection pool:
        the pool's policy only governs learned states (record/status), which `vk:` units never
        have, and its command timeout suits the keys' reservations as much."""
        self.config = config
        self.store = open_store(config.store)
        self.cache = KeyCache(self.store, config.cache_ttl_s)
        self.ledger = ledger
        self.metrics = KeyMetrics(config.metrics_per_key)
        self._settling: set[asyncio.Task] = set()
        self._reserve_nowait = getattr(ledger, "reserve_nowait", None)
        self._settle_nowait = getattr(ledger, "settle_nowait", None)

    async def start(self) -> None:
        await self.cache.start()
        self.metrics.start()

    async def close(self) -> None:
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self.metrics.close()
        await self.cache.close()
        await self.store.close()  # the ledger is the pool's: it closes it

    # --- authentication -------------------------------------------------------------------------

    def knows(self, given: str) -> bool:
        return looks_like_key(given) and self.cache.lookup(hash_key(given)) is not None

    def identify(self, given: str) -> VirtualName:
        name = self.cache.seen.get(given)
        if name is None:
            name = self._first_sight(given)
        if name.valid_until != math.inf and time.time() >= name.valid_until:
            state = name.entry.state(time.time())
            raise Unauthorized(f"This virtual key is {state}.", code=f"key_{state}")
        return name

    def _first_sight(self, given: str) -> VirtualName:
        """The key string's first request since the cache was last read: hashed, looked up."""
        entry = self.cache.lookup(hash_key(given)) if looks_like_key(given) else None
        if entry is None:
            raise Unauthorized("Invalid gateway token.")
        name = self.cache.seen[given] = _name_of(entry, self.metrics)
        return name

    def owner(self, name: str) -> str | None:
        """Stored responses belong to the key's id: stable through renames and rotations."""
        entry = virtual_entry(name)
        return None if entry is None else "own_" + entry.id

    # --- admission ------------------------------------------------------------------------------

    def allow_model(self, ctx: Any, model: str) -> None:
        """The allowlist alone (counting tokens, reading a model): 403 naming the allowed."""
        entry = virtual_entry(ctx.token_name)
        if entry is None:
            return
        ctx.key_id = entry.id
        if entry.models is not None and model not in entry.models:
            raise _not_allowed(entry.models, model)

    def allowed_models(self, token_name: Any, names: list[str]) -> list[str]:
        """The model names the key may use, of `names` (all of them for a gateway token)."""
        entry = virtual_entry(token_name)
        if entry is None or entry.models is None:
            return names
        return [name for name in names if name in entry.models]

    async def admit(self, ctx: Any, model: str, body_size: int) -> None:
        """Every check of a request that spends: `allow_model`'s, then budget and limits. TPM
        reserves a quarter of the body's bytes as the token estimate (settled with the real
        count when the answer ends)."""
        name = ctx.token_name
        if type(name) is not VirtualName:
            return
        entry = name.entry
        ctx.key_id = entry.id
        if entry.models is not None and model not in entry.models:
            raise _not_allowed(entry.models, model)
        if entry.budget is not None and self.cache.spend(entry) >= entry.budget:
            raise _budget_spent(entry, time.time())
        if not name.candidates:
            return
        tokens = body_size // 4  # an int within the ledgers' bounds: reserve_nowait's contract
        nowait = self._reserve_nowait  # Redis: from this process's grant, no coroutine
        hold = None if nowait is None else nowait(name.candidates[0], tokens)
        if hold is None:
            verdict = await self.ledger.reserve(name.candidates, tokens, _LEASE_S)
            if isinstance(verdict, Refusal):
                raise _rate_limited(entry, verdict, time.time())
            hold = verdict
        ctx.key_hold = hold

    def finish(self, ctx: Any) -> None:
        """The answer has ended (ctx.finish() has run): settle and charge, off the request."""
        name = ctx.token_name
        if type(name) is not VirtualName:
            return
        entry = name.entry
        ctx.key_id = entry.id
        ctx.token_name = entry.name  # the plain string: the record outlives the request
        cost = ctx.cost_usd or 0.0
        name.counters.observe(cost)
        if cost > 0:
            self.cache.charge(entry.id, cost, time.time())
        hold: Reservation | None = ctx.key_hold
        if hold is None:
            return
        ctx.key_hold = None
        used = _used_tokens(ctx)
        # Settling corrects the token estimate (TPM), frees a parallel slot or refunds a request
        # that got no answer: a key with only RPM / RPD whose request was answered needs none.
        if (
            used is not None
            and entry.max_parallel is None
            and (entry.tpm is None or used == hold.tokens)
        ):
            return  # limits stay one round trip per request
        if self._settle_nowait is not None and self._settle_nowait(hold, used):
            return  # Redis: written to the open connection (or into a grant), no task
        task = asyncio.get_running_loop().create_task(self.ledger.settle(hold, used))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


def _used_tokens(ctx: Any) -> int | None:
    """The real token count; None (a refund of the request) when nothing was answered."""
    if ctx.usage is not None:
        return (ctx.prompt_tokens or 0) + (ctx.completion_tokens or 0)
    if ctx.status is not None and ctx.status >= 400:
        return None
    return 0


def _not_allowed(models: list[str], model: str) -> Forbidden:
    allowed = ", ".join(models) or "none"
    return Forbidden(
        f"This key may not use model '{model}'. Allowed models: {allowed}.",
        code="model_not_allowed",
    )


def _budget_spent(entry: VirtualKey, now: float) -> InsufficientQuota:
    resets = entry.period_resets_at(now)
    headers = {}
    when = "it is not reset (budget_period: never)"
    if resets is not None:
        headers["retry-after"] = str(max(math.ceil(resets - now), 1))
        when = "it resets at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resets))
    return InsufficientQuota(
        f"This key's budget of ${entry.budget:g} per {entry.budget_period} is spent; {when}.",
        headers=headers,
    )


def _rate_limited(entry: VirtualKey, refusal: Refusal, now: float) -> AllRateLimited:
    wait = max(math.ceil(refusal.retry_at - now), 1)
    return AllRateLimited(
        f"This key's {refusal.reason} limit is reached; retry after {wait} s.",
        code="rate_limit_exceeded",
        headers=refusal_headers(entry, refusal.reason, wait),
    )
