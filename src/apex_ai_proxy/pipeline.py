"""The request pipeline, top to bottom:

    authenticate → read + decode body → map model → resolve route → dispatch → answer → record

One function per client endpoint shape; everything else is delegated to the module named for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import BadRequest, GatewayError, PayloadTooLarge, error_body
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.telemetry.record import RawRecord

if TYPE_CHECKING:
    from apex_ai_proxy.routing import Route
    from apex_ai_proxy.server import Gateway

# Headers of the client passed on to upstreams that speak the same dialect.
ANTHROPIC_PASS_HEADERS = ("anthropic-beta", "anthropic-version")


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
    if "input" not in body:
        raise BadRequest("Missing required field 'input'.", param="input")


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
            stream = ctx.stream = body.get("stream") is True and op.kind == "chat"
            extra = _pass_headers(request) if op.client_dialect == "anthropic" else {}
            response = await gw.dispatcher.run(request, ctx, op, route, body, stream, extra)
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(op.client_dialect, err, ctx)
        gw.record(ctx)
        return response

    return handle


def _pass_headers(request: Request) -> dict[str, str]:
    headers = request.headers
    return {name: headers[name] for name in ANTHROPIC_PASS_HEADERS if name in headers}
