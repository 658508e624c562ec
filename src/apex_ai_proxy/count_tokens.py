"""POST /v1/messages/count_tokens: exact where an Anthropic upstream can count, else an estimate.

The answer is Anthropic's shape, `{"input_tokens": N}`; the `x-apex-token-count` header says
whether it is `exact` (counted by the upstream) or `estimate` (dialects.estimate_tokens:
characters / 4 plus fixed costs per message and image, documented there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import estimate_tokens, get_dialect
from apex_ai_proxy.errors import GatewayError
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.pipeline import (
    error_response,
    internal_error,
    read_json_body,
    require_model,
    validate_chat,
)

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
            beta = request.headers.get("anthropic-beta")
            extra = {"anthropic-beta": beta} if beta is not None else {}
            counted = await gw.dispatcher.count_tokens(request, ctx, route, body, extra)
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
