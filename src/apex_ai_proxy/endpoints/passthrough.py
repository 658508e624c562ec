"""Passthrough: a request carrying X-APEX-AI-PROXY-PROVIDER goes to that upstream, whatever its
path and method (`selects`), served through the lifecycle like every endpoint:

    enabled? → gateway token (X-APEX-AI-PROXY-TOKEN unless `open`) → type → method and
    origin-form target → provider (allowlist, address checks) → body (+ model mapping) →
    forward (which checks method, target and headers again, and drops gateway tokens) → record

The token is checked here, not by the lifecycle: its header, and whether there is one, depend
on the passthrough config, and a bad type header is refused before it (as it always was).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.http.server import Handler
from apex_ai_proxy.lifecycle import Handle, early_refusal
from apex_ai_proxy.passthrough.forward import error_dialect, forward
from apex_ai_proxy.passthrough.guard import (
    PROVIDER_HEADER,
    TYPE_HEADER,
    PassthroughRefused,
    check_api_type,
    check_method,
    check_no_stray_token,
    check_request_target,
    resolve_target,
)
from apex_ai_proxy.passthrough.service import TOKEN_HEADER
from apex_ai_proxy.services import Services
from apex_ai_proxy.virtualkeys.guard import virtual_entry

from .intake import read_body

# Stored header names are lower-case already: `dict.__contains__` skips the case-folding lookup
# that every request (passthrough or not) would otherwise pay.
_SELECTOR = PROVIDER_HEADER.lower()


def selects(request: Request) -> bool:
    """Whether `request` is a passthrough request (it names a passthrough upstream)."""
    return dict.__contains__(request.headers, _SELECTOR)


def route(serve: Handler) -> Callable[[Request], Awaitable[StreamResponse] | None]:
    """The HTTP server's `before_route` hook: passthrough requests go to `serve`, before (and
    whatever) the route table says."""

    def before_route(request: Request) -> Awaitable[StreamResponse] | None:
        return serve(request) if dict.__contains__(request.headers, _SELECTOR) else None

    return before_route


def early_check(services: Services, request: Request) -> Response | None:
    """Before `100 Continue`: the gateway token checked as `handle` will check it."""
    relay = services.passthrough
    if relay.client is None or relay.config.open:
        return None  # the handler answers (disabled) or needs no token
    return early_refusal(request, lambda request: services.auth.check(request, TOKEN_HEADER))


def handler(services: Services) -> Handle:
    relay = services.passthrough

    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        ctx.mode = "passthrough"
        ctx.client_dialect = error_dialect(None, request.path)
        ctx.passthrough_type = check_api_type(request.headers.get(TYPE_HEADER))
        ctx.client_dialect = error_dialect(ctx.passthrough_type, request.path)
        if relay.client is None:
            raise PassthroughRefused(
                "Passthrough is disabled on this gateway (passthrough.enabled is false)."
            )
        if not relay.config.open:
            ctx.token_name = services.auth.check(request, TOKEN_HEADER)
            if virtual_entry(ctx.token_name) is not None:  # no allowlist, limits or budget here
                raise PassthroughRefused("Virtual keys cannot use passthrough.")
        check_method(request.method)
        _, query = check_request_target(request.raw_path_qs)
        check_no_stray_token(request.headers, query, relay.is_gateway_token, relay.token_lengths)
        target = await resolve_target(request.headers[PROVIDER_HEADER], relay.config)
        ctx.provider = target.origin
        limit = min(relay.config.max_body_bytes, services.max_body)
        body = _map_model(services, await read_body(request, limit), request, ctx)
        result = await forward(
            request,
            body,
            target,
            relay.client,
            api_type=ctx.passthrough_type,
            request_id=ctx.request_id,
            is_gateway_secret=relay.is_gateway_token,
        )
        outcome = result.outcome
        ctx.status = outcome.status
        ctx.bytes_in, ctx.bytes_out = outcome.request_bytes, outcome.response_bytes
        ctx.ttfb_ms = outcome.ttfb_ms
        if outcome.error:
            ctx.error_type, ctx.error_message = "passthrough_error", outcome.error
        for name in outcome.dropped_credentials:  # the record says a gateway token was held back
            ctx.dropped_fields.append(f"header:{name}")
        return result.response

    return handle


def _map_model(services: Services, body: bytes, request: Request, ctx: RequestContext) -> bytes:
    """Model mapping works in passthrough too; the body is rewritten only when it changes."""
    if not body or b'"model"' not in body:
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return body
    ctx.requested_model = data["model"]
    mapped = ctx.mapped_model = services.map_model(data["model"], request)
    if mapped == data["model"]:
        return body
    data["model"] = mapped
    return orjson.dumps(data)
