"""The request pipeline, top to bottom:

    authenticate → read + decode body → map model → resolve route → dispatch → answer → record

One function per client endpoint shape; everything else is delegated to the module named for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import BadRequest, GatewayError, PayloadTooLarge, error_body
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.routing import Route
from apex_ai_proxy.telemetry.record import RawRecord

if TYPE_CHECKING:
    from apex_ai_proxy.providers.base import Target
    from apex_ai_proxy.server import Gateway

log = logging.getLogger("apex_ai_proxy.pipeline")

# Headers of the client passed on to upstreams that speak the same dialect.
ANTHROPIC_PASS_HEADERS = ("anthropic-beta", "anthropic-version")
# Model names end up in headers (x-apex-model), records and metric labels: printable and short.
MAX_MODEL_LENGTH = 256


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 when it is (or says it is) over `limit`."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {limit} bytes.")
    raw = await request.read()
    if request.too_large or len(raw) > limit:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes.")
    return raw


async def read_json_body(request: Request, limit: int) -> tuple[dict, bytes]:
    raw = await read_body(request, limit)
    if not raw:
        raise BadRequest("Request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    return body, raw


def require_model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise BadRequest("Missing required field 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("Field 'model' must be a non-empty string.", param="model")
    if len(model) > MAX_MODEL_LENGTH:
        raise BadRequest(
            f"Field 'model' is longer than {MAX_MODEL_LENGTH} characters.", param="model"
        )
    if not model.isprintable():  # CR, LF, NUL, other control and separator characters
        raise BadRequest("Field 'model' must not contain control characters.", param="model")
    return model


def validate_chat(body: dict) -> None:
    messages = body.get("messages")
    if messages is None:
        raise BadRequest("Missing required field 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise BadRequest("Field 'messages' must be an array.", param="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("Field 'stream' must be a boolean.", param="stream")


def validate_embeddings(body: dict) -> None:
    value = body.get("input")
    if value is None:
        raise BadRequest("Missing required field 'input'.", param="input")
    if not isinstance(value, str | list) or not value:
        raise BadRequest(
            "Field 'input' must be a non-empty string or array (of strings or token arrays).",
            param="input",
        )


def embeddings_route(route: Route) -> Route:
    """`route` without the targets that cannot embed; a 400 when none can."""
    targets = [t for t in route.targets if _embeds(t)]
    if not targets:
        raise BadRequest(
            f"Model '{route.name}' does not support embeddings; use an OpenAI-compatible model.",
            param="model",
        )
    if len(targets) == len(route.targets):
        return route
    return replace(route, targets=targets)


def _embeds(target: Target) -> bool:
    adapter = target.adapter
    return adapter.embeddings_url(adapter.base_for(target), target.upstream_model) is not None


def internal_error(dialect: str, ctx: RequestContext, exc: Exception) -> Response:
    """The last resort: a bug answered with a 500 in the client's dialect, logged once with its
    traceback. Bad input must never get here; the request id ties the answer to the log."""
    log.error("unexpected error in %s (request %s)", ctx.endpoint, ctx.request_id, exc_info=exc)
    err = GatewayError(
        f"Internal gateway error (request {ctx.request_id}); it is logged, please report it.",
        code="internal_error",
    )
    return error_response(dialect, err, ctx)


def stream_started(ctx: RequestContext) -> bool:
    """A streamed answer has sent its head (the dispatcher sets ttfb_ms right after): too late
    for an error response, only cutting the connection tells the client."""
    return ctx.stream and ctx.ttfb_ms is not None


def error_response(dialect: str, err: GatewayError, ctx: RequestContext) -> Response:
    ctx.status = err.status
    ctx.error_type = err.error_type
    ctx.error_message = err.message
    resp = Response(
        status=err.status, body=error_body(dialect, err), content_type="application/json"
    )
    resp.headers["x-request-id"] = ctx.request_id
    if ctx.attempts:
        resp.headers["x-apex-attempts"] = str(len(ctx.attempts))
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


async def accept_model_request(
    gw: Gateway, request: Request, ctx: RequestContext, validate: Callable[[dict], None]
) -> tuple[dict, Route]:
    """The steps every model endpoint shares: authenticate, read and check the body, map the
    model and resolve its route. Raises GatewayError for the client's dialect to render."""
    ctx.token_name = gw.auth.check(request)
    body, raw = await read_json_body(request, gw.max_body)
    ctx.bytes_in = len(raw)
    if gw.capture_raw:
        ctx.raw = RawRecord(request.headers.copy(), raw)
    model = ctx.requested_model = require_model(body)
    validate(body)
    mapped = gw.map_model(model, request)
    route = gw.router.resolve(mapped)
    ctx.mapped_model = mapped  # left empty when the name does not resolve (records, metrics)
    return body, route


def make_model_handler(
    gw: Gateway, endpoint: str, op: Operation, validate: Callable[[dict], None]
) -> Callable[[Request], object]:
    """A handler for an endpoint whose body names a model: chat in any dialect, embeddings."""

    async def handle(request: Request) -> StreamResponse:
        ctx = RequestContext.new(endpoint, op.client_dialect)
        try:
            body, route = await accept_model_request(gw, request, ctx, validate)
            if op.kind == "embeddings":
                route = embeddings_route(route)
            stream = ctx.stream = body.get("stream") is True and op.kind == "chat"
            extra = _pass_headers(request) if op.client_dialect == "anthropic" else {}
            response = await gw.dispatcher.run(request, ctx, op, route, body, stream, extra)
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(op.client_dialect, err, ctx)
        except Exception as exc:
            if stream_started(ctx):
                raise
            response = internal_error(op.client_dialect, ctx, exc)
        gw.record(ctx)
        return response

    return handle


def _pass_headers(request: Request) -> dict[str, str]:
    headers = request.headers
    return {name: headers[name] for name in ANTHROPIC_PASS_HEADERS if name in headers}
