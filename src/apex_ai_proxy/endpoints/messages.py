"""POST /v1/messages: Anthropic's Messages API, to any upstream dialect, whole or streamed.

POST /v1/messages/count_tokens: exact where an Anthropic upstream can count, else an estimate.
The answer is Anthropic's shape, `{"input_tokens": N}`; the `x-apex-token-count` header says
whether it is `exact` (counted by the upstream) or `estimate` (dialects.estimate_tokens:
characters / 4 plus fixed costs per message and image, documented there).
"""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import estimate_tokens, get_dialect
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

from .intake import accept_model_request, read_json_body, require_model, validate_chat

DIALECT = "anthropic"
MESSAGES = Operation(DIALECT)
# Headers of the client passed on to upstreams that speak the same dialect.
ANTHROPIC_PASS_HEADERS = ("anthropic-beta", "anthropic-version")


def handler(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        body, route = await accept_model_request(services, request, ctx, validate_chat)
        stream = ctx.stream = body.get("stream") is True
        extra = _pass_headers(request)
        return await services.dispatcher.run(request, ctx, MESSAGES, route, body, stream, extra)

    return handle


def _pass_headers(request: Request) -> dict[str, str]:
    headers = request.headers
    return {name: headers[name] for name in ANTHROPIC_PASS_HEADERS if name in headers}


def count_tokens_handler(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        body, raw = await read_json_body(request, services.max_body)
        ctx.bytes_in = len(raw)
        model = ctx.requested_model = require_model(body)
        validate_chat(body)
        model = ctx.mapped_model = services.map_model(model, request)
        route = services.router.resolve(model)
        if services.virtual_keys is not None:  # the allowlist; counting spends no budget
            services.virtual_keys.allow_model(ctx, model)
        beta = request.headers.get("anthropic-beta")
        extra = {"anthropic-beta": beta} if beta is not None else {}
        counted = await services.dispatcher.count_tokens(request, ctx, route, body, extra)
        if counted is None:
            count, how = estimate_tokens(get_dialect(DIALECT).decode_request(body)), "estimate"
        else:
            count, how = counted["input_tokens"], "exact"
        resp = Response(body=orjson.dumps({"input_tokens": count}), content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        resp.headers["x-apex-token-count"] = how
        return resp

    return handle
