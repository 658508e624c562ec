"""The gateway's side of virtual keys, per request:

    identify(given)       auth: which key this is (a cache lookup), or 401 expired / revoked
    admit(ctx, model)     before dispatch: allowlist (403), budget (429 insufficient_quota),
                          then RPM / TPM / RPD / max_parallel in the keypool ledger (429)
    finish(ctx)           when the answer has ended: settle the reservation with the real
                          token count, charge the cost estimate to the budget

Limits are the key pool's own ledger (keypool/; Services builds it, the pool and the keys
share it, the pool closes it), unit `vk:<id>`: with `state: {backend: redis}`
one EVALSHA per request checks and reserves every window atomically for all replicas and
workers; with the local backend they hold per process. A key without limits costs no round
trip. A request in flight is never cut: budgets are checked on admission only. A key with
limits sees what is left of them on every answer (virtualkeys/headers.py).
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
from apex_ai_proxy.virtualkeys.headers import refusal_headers
from apex_ai_proxy.virtualkeys.metrics import KeyMetrics
from apex_ai_proxy.virtualkeys.model import VirtualKey, hash_key, looks_like_key

_LEASE_S = 900.0  # a max_parallel slot whose request never settles (a crash) frees after this


class VirtualName(str):
    """The name a virtual key authenticates as (what records show), carrying its entry."""

    entry: VirtualKey


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

    async def start(self) -> None:
        await self.cache.start()

    async def close(self) -> None:
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self.cache.close()
        await self.store.close()  # the ledger is the pool's: it closes it

    # --- authentication -------------------------------------------------------------------------

    def knows(self, given: str) -> bool:
        return looks_like_key(given) and self.cache.lookup(hash_key(given)) is not None

    def identify(self, given: str) -> VirtualName:
        entry = self.cache.lookup(hash_key(given)) if looks_like_key(given) else None
        if entry is None:
            raise Unauthorized("Invalid gateway token.")
        state = entry.state(time.time())
        if state != "active":
            raise Unauthorized(f"This virtual key is {state}.", code=f"key_{state}")
        name = VirtualName(entry.name)
        name.entry = entry
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
            allowed = ", ".join(entry.models) or "none"
            raise Forbidden(
                f"This key may not use model '{model}'. Allowed models: {allowed}.",
                code="model_not_allowed",
            )

    def allowed_models(self, token_name: Any, names: list[str]) -> list[str]:
        """The model names the key may use, of `names` (all of them for a gateway token)."""
        entry = virtual_entry(token_name)
        if entry is None or entry.models is None:
            return names
        return [name for name in names if name in entry.models]

    async def admit(self, ctx: Any, model: str, tokens: int) -> None:
        entry = virtual_entry(ctx.token_name)
        if entry is None:
            return
        self.allow_model(ctx, model)
        now = time.time()
        if entry.budget is not None and self.cache.spend(entry) >= entry.budget:
            raise _budget_spent(entry, now)
        limits = entry.limits()
        if not any(limits):
            return
        verdict = await self.ledger.reserve([Candidate("vk:" + entry.id, limits)], tokens, _LEASE_S)
        if isinstance(verdict, Refusal):
            raise _rate_limited(entry, verdict, now)
        ctx.key_hold = verdict

    def finish(self, ctx: Any) -> None:
        """The answer has ended (ctx.finish() has run): settle and charge, off the request."""
        entry = virtual_entry(ctx.token_name)
        if entry is None:
            return
        ctx.key_id = entry.id
        ctx.token_name = str(ctx.token_name)
        cost = ctx.cost_usd or 0.0
        self.metrics.observe(entry.name, cost)
        if cost > 0:
            self.cache.charge(entry.id, cost, time.time())
        hold: Reservation | None = ctx.key_hold
        if hold is not None:
            ctx.key_hold = None
            used = _used_tokens(ctx)
            if not _needs_settling(entry, hold, used):
                return  # limits stay one round trip per request
            nowait = getattr(self.ledger, "settle_nowait", None)
            if nowait is not None and nowait(hold, used):
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


def _needs_settling(entry: VirtualKey, hold: Reservation, used: int | None) -> bool:
    """Settling corrects the token estimate (TPM), frees a parallel slot or refunds a request
    that got no answer; a key with only RPM / RPD whose request was answered needs none."""
    return (
        used is None
        or entry.max_parallel is not None
        or (entry.tpm is not None and used != hold.tokens)
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
