"""POST /v1/messages/count_tokens: exact where an Anthropic upstream can count, else an estimate.

The answer is Anthropic's shape, `{"input_tokens": N}`; the `x-apex-token-count` header says
whether it is `exact` (counted by the upstream) or `estimate` (dialects.estimate_tokens:
characters / 4 plus fixed costs per message and image, documented there).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import estimate_tokens, get_dialect
from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.errors import GatewayError
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.pipeline import (
    error_response,
    internal_error,
    read_json_body,
    require_model,
    validate_chat,
)
from apex_ai_proxy.upstream import CONNECTION_ERRORS

if TYPE_CHECKING:
    from apex_ai_proxy.server import Gateway

ENDPOINT = "/v1/messages/count_tokens"


def make_count_tokens_handler(gw: Gateway):
    async def handle(request: Request) -> Response:
        ctx = RequestContext.new(ENDPOINT, "anthropic")
        try:
            ctx.token_name = gw.auth.check(request)
            body, raw = await read_json_body(request, gw.max_body)
            ctx.bytes_in = len(raw)
            model = ctx.requested_model = require_model(body)
            validate_chat(body)
            model = ctx.mapped_model = gw.map_model(model, request)
            route = gw.router.resolve(model)
            counted = await _count_upstream(gw, ctx, route, body, request)
            if counted is None:
                count, how = (
                    estimate_tokens(get_dialect("anthropic").decode_request(body)),
                    "estimate",
                )
            else:
                count, how = counted, "exact"
            resp = Response(
                body=orjson.dumps({"input_tokens": count}), content_type="application/json"
            )
            resp.headers["x-request-id"] = ctx.request_id
            resp.headers["x-apex-token-count"] = how
            ctx.status = 200
        except GatewayError as err:
            resp = error_response("anthropic", err, ctx)
        except Exception as exc:
            resp = internal_error("anthropic", ctx, exc)
        gw.record(ctx)
        return resp

    return handle


async def _count_upstream(
    gw: Gateway, ctx: RequestContext, route, body: dict, request: Request
) -> int | None:
    """Ask the first available Anthropic upstream of the route to count; None when none can."""
    for target, key in gw.balancer.candidates(route):
        adapter = target.adapter
        if adapter.dialect != "anthropic" or not hasattr(adapter, "count_tokens_url"):
            continue
        payload = dict(body)
        payload["model"] = target.upstream_model
        payload.pop("stream", None)
        payload.pop("max_tokens", None)
        headers = (
            {"anthropic-beta": request.headers["anthropic-beta"]}
            if "anthropic-beta" in request.headers
            else None
        )
        upstream_request = adapter.build(
            target,
            key,
            adapter.count_tokens_url(adapter.base_for(target)),
            dumps(payload),
            headers,
        )
        started = time.monotonic()
        try:
            upstream = await gw.client.send(
                upstream_request,
                *gw.dispatcher.settings_for(target),
            )
            raw = await upstream.read(adapter.config.max_response_bytes)
        except CONNECTION_ERRORS:
            return None
        ctx.provider, ctx.upstream_model = target.provider, target.upstream_model
        ctx.ttfb_ms = (time.monotonic() - started) * 1000.0
        if upstream.status != 200:
            return None
        try:
            count = orjson.loads(raw).get("input_tokens")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return count if isinstance(count, int) else None
    return None
