"""GET /admin/pool: every provider key, never the key itself.

One row per key: its name (`provider#n`, as records show it) and the key's last 4 characters,
its state (`ok`, `cooling_down`, `rate_limited`, `degraded`), why, until when (epoch seconds), this
process's latency estimate, and the requests and 429s it got in the last hour (from the
records' attempts); and a timeline of the last hour's 429s and 5xx per provider, per minute,
counted per attempt. Each key row carries `quota`: the quota-aware key pool's rows for that key,
one per model (the rows of `apex-ai-proxy pool`, dispatch/pool_view.py: state, until, the
configured limits, what is left of each and the share of the tightest one left; with Redis state
what every replica shares). `endpoints`: each provider endpoint (provider × base URL, without
credentials) and whether repeated faults have it `degraded` (tried after the healthy ones).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.pool_view import pool_rows
from apex_ai_proxy.errors import GatewayError
from apex_ai_proxy.health import HealthState, endpoint_names
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.providers.base import ApiKey
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.lookup import failure_timeline, key_traffic

from ._common import json_answer, read_records

HOUR_S = 3600
TIMELINE_STEP_S = 60
MIN_SHOWN_LENGTH = 16  # a shorter key shows no characters at all: 4 would be too much of it


def show(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        now = time.time()
        end = (now // TIMELINE_STEP_S + 1) * TIMELINE_STEP_S
        try:
            traffic = await read_records(services, key_traffic, now - HOUR_S)
            timeline = await read_records(
                services, failure_timeline, end - HOUR_S, end, TIMELINE_STEP_S
            )
        except GatewayError:
            traffic, timeline = {}, None  # no records: the pool's state is still worth showing
        quota = await keypool_view(services)
        keys = [
            {**key_row(key, services.health, now), **_traffic(traffic, key.name),
             "quota": quota.get(key.name, [])}
            for key in pool_keys(services)
        ]  # fmt: skip
        endpoints = endpoint_rows(services, now)
        body = {"now": now, "keys": keys, "endpoints": endpoints, "timeline": timeline}
        return json_answer(body, ctx)

    return handle


def pool_keys(services: Services) -> list[ApiKey]:
    """Every key a request can be sent with, once each, in the config's order (the same
    units as health.unit_names)."""
    router = services.router
    keys = [
        key
        for adapter in router.adapters.values()
        for key in adapter.keys_from(adapter.config.keys())
    ]
    keys += [key for route in router.routes.values() for target in route.targets
             for key in target.keys]  # fmt: skip
    return list({key.name: key for key in keys}.values())


def key_row(key: ApiKey, health: HealthState, now: float) -> dict[str, Any]:
    unit = health.unit(key.name)
    mono = time.monotonic()
    state = unit.state(mono)
    reason, until = None, None
    if state != "ok":
        until = now + (unit.cooldown_until - mono)
        reason = {
            "rate_limited": "the upstream answered 429",
            "degraded": "repeated 5xx, overload or timeouts in its recent attempts",
        }.get(state, f"{unit.failures} failure(s) in a row (auth or another failover status)")
    return {
        "key": key.name,
        "provider": key.name.split("#", 1)[0].split("@", 1)[0],
        "last4": key.secret[-4:] if len(key.secret) >= MIN_SHOWN_LENGTH else None,
        "state": state,
        "reason": reason,
        "until": until,
        "failures": unit.failures,
        "latency_ms": None if unit.ewma_ttfb is None else round(unit.ewma_ttfb * 1000, 1),
    }


def endpoint_rows(services: Services, now: float) -> list[dict[str, Any]]:
    """Every provider endpoint: `degraded` (tried after the healthy ones, until when) or ok."""
    health = services.health
    mono = time.monotonic()
    rows = []
    for name in endpoint_names(services.router):
        provider, _, base_url = name.rpartition(" ")
        degraded = health.endpoint_degraded(name, mono)
        rows.append(
            {
                "provider": provider,
                "base_url": shown_url(base_url),
                "state": "degraded" if degraded else "ok",
                "until": now + health.unit(name).cooldown_until - mono if degraded else None,
            }
        )
    return rows


def shown_url(url: str) -> str:
    """A base URL without what may be a secret in it: user and password, query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _traffic(traffic: dict[str, tuple[int, int]], name: str) -> dict[str, int]:
    requests, limited = traffic.get(name, (0, 0))
    return {"requests_1h": requests, "rate_limited_1h": limited}


async def keypool_view(services: Services) -> dict[str, list[dict[str, Any]]]:
    """Per key name (`provider#n`): the key pool's rows of that key, one per model."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in await pool_rows(services.pool, services.router):
        by_key.setdefault(row["unit"].rpartition("|")[0], []).append(row)
    return by_key
