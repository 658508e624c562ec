"""The key pool as people see it: one row per key × model with its state, until and what is
left (`apex-ai-proxy pool`, GET /admin/pool), the key named `provider#2` and shown by its last 4
characters at most, never whole; and the pool's gauges on /metrics.

A key that HealthState holds out as `degraded` (repeated 5xx or timeouts, health/faults.py) shows
so in every row of it: the ledger counts quotas, HealthState the faults."""

from __future__ import annotations

import time
from dataclasses import replace

from apex_ai_proxy.dispatch.pool import KeyPool
from apex_ai_proxy.keypool import KeyState, UnitView
from apex_ai_proxy.routing import Router
from apex_ai_proxy.telemetry import set_pool_fallbacks, set_pool_keys

#: Keys shorter than this are not hinted at all: 4 characters of a short key say too much.
MIN_HINTED_KEY = 12


#: The order of a candidate's limit vector (keypool.limits.limit_vector).
LIMIT_NAMES = ("rpm", "rpd", "tpm", "tpd", "max_parallel")


async def pool_rows(pool: KeyPool, router: Router) -> list[dict]:
    hints = {
        key.name: _hint(key.secret)
        for route in router.routes.values()
        for target in route.targets
        for key in target.keys
    }
    limits = {pool.names.get(c.unit, c.unit): _limits(c.limits) for c in pool.all_candidates()}
    views = await pool.snapshot()
    now = time.time()
    return [
        _row(name, _with_health(pool, name, view, now), hints, limits.get(name, {}), now)
        for name, view in views.items()
    ]


def _with_health(pool: KeyPool, name: str, view: UnitView, now: float) -> UnitView:
    """`view` of the unit named `name` ("provider#2|model"), `degraded` when HealthState holds
    its key out for repeated faults and the ledger has nothing longer to say."""
    health = pool.health
    key_name = name.rpartition("|")[0]
    if health is None or key_name not in health:
        return view
    unit = health.unit(key_name)
    left = unit.cooldown_until - time.monotonic()
    if not unit.degraded or left <= 0 or view.until > now + left:
        return view
    return replace(view, state=KeyState.DEGRADED.value, reason="repeated_faults", until=now + left)


def _row(
    name: str, view: UnitView, hints: dict[str, str], limits: dict[str, int], now: float
) -> dict:
    key_name = name.rpartition("|")[0]
    return {
        "unit": name,
        "hint": hints.get(key_name, ""),
        "state": view.state,
        "reason": view.reason,
        "until_s": max(round(view.until - now), 0) if view.until else 0,
        "until": view.until or None,  # epoch seconds: the reset time a page shows as a clock
        "limits": limits,
        "remaining": view.remaining,
        "headroom": _headroom(view.remaining, limits),
        "minute_requests": view.minute_requests,
        "day_requests": view.day_requests,
        "minute_tokens": view.minute_tokens,
        "day_tokens": view.day_tokens,
        "in_flight": view.in_flight,
    }


def _limits(vector: tuple[int, ...]) -> dict[str, int]:
    """The resolved configured limits by name (0 in the vector: not limited)."""
    return {name: value for name, value in zip(LIMIT_NAMES, vector, strict=False) if value}


def _headroom(remaining: dict[str, int], limits: dict[str, int]) -> float | None:
    """The share of the tightest configured limit left (0..1); None without limits, which is
    not the same as everything left."""
    shares = [remaining.get(name, 0) / limit for name, limit in limits.items() if limit]
    return round(min(shares), 4) if shares else None


def _hint(secret: str) -> str:
    return f"…{secret[-4:]}" if len(secret) >= MIN_HINTED_KEY else ""


async def observe_pool_metrics(pool: KeyPool) -> None:
    """Set the pool's gauges from the ledger, before /metrics renders: key × model pairs per
    provider and state, and the ledger's Redis fallbacks. Nothing when the pool is off (no
    limits, nothing learned)."""
    if not pool.active:
        return
    counts: dict[tuple[str, str], int] = {}
    now = time.time()
    for view in await pool.ledger.snapshot(pool.all_candidates()):
        view = _with_health(pool, pool.names.get(view.unit, view.unit), view, now)
        provider = view.unit.partition("#")[0].partition("@")[0]  # the unit's scope
        counts[(provider, view.state)] = counts.get((provider, view.state), 0) + 1
    for provider in {p for p, _ in counts}:
        for state in KeyState:
            set_pool_keys(provider, state.value, counts.get((provider, state.value), 0))
    set_pool_fallbacks(getattr(pool.ledger, "fallbacks", 0))
