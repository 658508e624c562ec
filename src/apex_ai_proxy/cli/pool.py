"""`apex-ai-proxy pool`: the provider key pool, per key × model: state, use and what is left.

Read from the configured state backend (`state:`, or `health:` when there is none): with Redis
it is what every replica shares; with local state only the serving process knows its counts,
so the command shows the configured limits and says so. Keys are named `provider#2` and shown
by their last 4 characters at most, never whole.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson

from apex_ai_proxy.cli.config_file import load_or_exit
from apex_ai_proxy.config import Config
from apex_ai_proxy.keypool import UnitView, effective_state

#: Keys shorter than this are not hinted at all: 4 characters of a short key say too much.
MIN_HINTED_KEY = 12


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
    from apex_ai_proxy.routing import Router

    state = effective_state(config)
    router = Router(config)
    hints = {
        key.name: _hint(key.secret)
        for route in router.routes.values()
        for target in route.targets
        for key in target.keys
    }
    pool = KeyPool.open(config, router)
    try:
        views = await pool.ledger.snapshot(pool.all_candidates())
    finally:
        await pool.close()
    now = time.time()
    return [_row(view, hints, now) for view in views], state.backend == "redis"


def _row(view: UnitView, hints: dict[str, str], now: float) -> dict:
    key_name = view.unit.rpartition("|")[0]
    return {
        "unit": view.unit,
        "hint": hints.get(key_name, ""),
        "state": view.state,
        "reason": view.reason,
        "until_s": max(round(view.until - now), 0) if view.until else 0,
        "remaining": view.remaining,
        "minute_requests": view.minute_requests,
        "day_requests": view.day_requests,
        "minute_tokens": view.minute_tokens,
        "day_tokens": view.day_tokens,
        "in_flight": view.in_flight,
    }


def _hint(secret: str) -> str:
    return f"…{secret[-4:]}" if len(secret) >= MIN_HINTED_KEY else ""
