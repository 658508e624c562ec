"""`apex-ai-proxy pool`: the provider key pool, per key × model: state, use and what is left.

Read from the configured state backend (`state:`, or `health:` when there is none): with Redis
it is what every replica shares, keys degraded by repeated faults included; with local state only the serving process knows its counts,
so the command shows the configured limits and says so. Keys are named `provider#2` and shown
by their last 4 characters at most, never whole.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.cli.config_file import load_or_exit
from apex_ai_proxy.config import Config
from apex_ai_proxy.keypool import effective_state

if TYPE_CHECKING:
    from apex_ai_proxy.health import HealthState
    from apex_ai_proxy.routing import Router


def register(sub: argparse._SubParsersAction) -> None:
    pool = sub.add_parser("pool", help="the provider key pool: state and quota per key × model")
    pool.add_argument("--config")
    pool.add_argument("--json", action="store_true", help="one JSON object per key × model")
    pool.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    rows, shared = asyncio.run(pool_rows(config))
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    if not shared:
        print(
            "state: local — counts and learned states live in the serving process; "
            "shown: the configured limits (use `state: {backend: redis}` to see them here)"
        )
    if not rows:
        print("no provider keys configured")
        return 0
    print(f"{'KEY × MODEL':<40} {'HINT':<8} {'STATE':<16} {'UNTIL':>8}  REMAINING")
    for row in rows:
        until = f"{row['until_s']}s" if row["until_s"] else "-"
        remaining = " ".join(f"{k}={v}" for k, v in row["remaining"].items()) or "no limits"
        print(f"{row['unit']:<40} {row['hint']:<8} {row['state']:<16} {until:>8}  {remaining}")
    return 0


async def pool_rows(config: Config) -> tuple[list[dict], bool]:
    """(one row per key × model, whether the counts are shared ones from Redis)."""
    from apex_ai_proxy.dispatch.pool import KeyPool
    from apex_ai_proxy.dispatch.pool_view import pool_rows as rows_of
    from apex_ai_proxy.routing import Router

    router = Router(config)
    pool = KeyPool.open(config, router, await shared_health(config, router))
    try:
        rows = await rows_of(pool, router)
    finally:
        await pool.close()
    return rows, effective_state(config).backend == "redis"


async def shared_health(config: Config, router: Router) -> HealthState | None:
    """The cooldowns and degraded keys the gateway's replicas share in Redis; None when they
    live in the serving process only, or Redis does not answer (the rows then show the
    ledger's states alone)."""
    from redis.exceptions import RedisError

    from apex_ai_proxy.health import CooldownTable, HealthState, effective_health, table_names
    from apex_ai_proxy.health.redis_sync import RedisHealthSync

    shared = effective_health(config)
    if shared.backend != "redis":
        return None
    retry = config.retry
    health = HealthState(
        retry.cooldown_base_s,
        retry.cooldown_max_s,
        retry.auth_failure_cooldown_s,
        CooldownTable(table_names(router)),
        key_faults=retry.key_faults,
        endpoint_faults=retry.endpoint_faults,
    )
    try:
        await RedisHealthSync(health, shared).load()
    except (RedisError, OSError):
        return None
    return health
