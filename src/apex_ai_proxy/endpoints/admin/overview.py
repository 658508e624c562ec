"""GET /admin/overview?range=15m|1h|24h|7d: traffic as time series plus totals, by model and
by provider (requests, error rate, p50/p95 latency, time to first token, tokens, cost).
The data and its shape: telemetry/series.py."""

from __future__ import annotations

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.series import RANGES, overview

from ._common import choice, json_answer, read_records


def show(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        range_name = choice(request.query.get("range", "1h"), RANGES, "range")
        return json_answer(await read_records(services, overview, range_name), ctx)

    return handle
