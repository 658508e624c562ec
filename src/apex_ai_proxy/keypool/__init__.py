"""A key pool that knows its quotas (issue 13): configured and learned limits per key × model.

One module per concern:

    config.py        `limits:` (provider, key, model entry) and `state:` models
    limits.py        minute buckets and the daily reset in a time zone
    signals.py       what an upstream answer says: learned windows and a verdict
    state.py         ok / rate_limited / quota_exhausted / invalid / degraded, a pure machine
    ledger.py        the ledger interface and its in-process backend
    redis_ledger.py  the same on Redis: one atomic script per check-and-reserve
    redis_scripts.py its Lua scripts (reserve, settle)
    resp.py          the lean pipelined connection those two scripts go over on every request
    headroom.py      the order to try candidates in, or when the pool frees up

Nothing here calls the dispatcher: it plugs in (see the report of branch key-pool).
"""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.keypool.config import Limits, StateConfig, resolve_limits
from apex_ai_proxy.keypool.headroom import HeadroomView
from apex_ai_proxy.keypool.ledger import (
    Candidate,
    Ledger,
    LocalLedger,
    Refusal,
    Reservation,
    UnitView,
)
from apex_ai_proxy.keypool.signals import Signal, Verdict, read_signal
from apex_ai_proxy.keypool.state import KeyState, KeyStatus, Policy

__all__ = [
    "Candidate",
    "HeadroomView",
    "KeyState",
    "KeyStatus",
    "Ledger",
    "Limits",
    "LocalLedger",
    "Policy",
    "Refusal",
    "Reservation",
    "Signal",
    "StateConfig",
    "UnitView",
    "Verdict",
    "effective_state",
    "open_ledger",
    "read_signal",
    "resolve_limits",
]


def effective_state(config: Any) -> StateConfig:
    """The `state:` section, or, when a config has none, one that follows today's `health:`
    (same backend and Redis, its own prefix beside the health one)."""
    if config.state is not None:
        return config.state
    health = config.health
    return StateConfig(
        backend=health.backend,
        redis_url=health.redis_url,
        key_prefix=health.key_prefix.rstrip(":") + ":pool:",
    )


def open_ledger(state: StateConfig, policy: Policy | None = None) -> Ledger:
    """The ledger for `state` (no I/O: a Redis ledger connects on its first call)."""
    policy = policy or Policy()
    if state.backend == "redis":
        from apex_ai_proxy.keypool.redis_ledger import RedisLedger

        return RedisLedger(state.redis_url, state.key_prefix, policy)
    from apex_ai_proxy.keypool.shared_ledger import SharedLedger, prepared

    table = prepared()  # `serve --workers N`: one table for all the workers
    return LocalLedger(policy) if table is None else SharedLedger(table, policy)
