"""Operations: /healthz and /readyz (probes: no token, no record), /metrics (token, no record).

The probes are plain HTTP handlers, not lifecycle endpoints: a load balancer polls them many
times a second and they have no request to record or error to render.
"""

from __future__ import annotations

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.pool_view import observe_pool_metrics
from apex_ai_proxy.http import Request, Response, json_response
from apex_ai_proxy.http.server import Handler
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry import render_metrics, set_degraded, set_keys_in_cooldown

PROBES = ("/healthz", "/readyz")


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def readyz(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        if not services.ready:
            return json_response({"status": "starting"}, status=503)
        body: dict[str, object] = {"status": "ready", "models": len(services.router.routes)}
        # Redis down is 200 "degraded", not 503: every replica shares the one Redis, so a load
        # balancer that pulls 503 replicas would take chat down everywhere for an outage that
        # only stops stored responses and shared cooldowns.
        parts = (("responses_store", services.conversations), ("health", services.health_sync))
        down = [name for name, part in parts if part is not None and not part.reachable]
        if down:
            body |= {"status": "degraded", "redis": "unreachable", "unreachable": down}
        return json_response(body)

    return handle


def metrics(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        for provider, count in services.health.cooling_by_provider().items():
            set_keys_in_cooldown(provider, count)
        keys, endpoints = services.health.degraded_by_provider()
        for provider in keys.keys() | endpoints.keys():
            set_degraded(provider, keys.get(provider, 0), endpoints.get(provider, 0))
        await observe_pool_metrics(services.pool)  # key pool (issue 13)
        body, content_type = render_metrics()
        resp = Response(body=body)
        resp.headers["content-type"] = content_type
        return resp

    return handle
