"""Reading and checking a request body, and the steps every model endpoint shares:

    read + decode body → check it → map the model → resolve its route

Everything here raises GatewayError (a 4xx) for the lifecycle to render; bad input never
reaches the last-resort 500.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import BadRequest, PayloadTooLarge
from apex_ai_proxy.http import Request
from apex_ai_proxy.routing import Route
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.record import RawRecord

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


def json_object(raw: bytes) -> dict:
    """The body as a JSON object, or 400."""
    if not raw:
        raise BadRequest("Request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    return body


async def read_json_body(request: Request, limit: int) -> tuple[dict, bytes]:
    raw = await read_body(request, limit)
    return json_object(raw), raw


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


async def accept_model_request(
    services: Services, request: Request, ctx: RequestContext, validate: Callable[[dict], None]
) -> tuple[dict, Route]:
    """Read and check the body, map the model and resolve its route (the token is checked
    already). Reads the body itself rather than through read_json_body: one coroutine less on
    the hot path."""
    raw = await read_body(request, services.max_body)
    body = json_object(raw)
    ctx.bytes_in = len(raw)
    if services.capture_raw:
        ctx.raw = RawRecord(request.headers.copy(), raw)
    model = ctx.requested_model = require_model(body)
    validate(body)
    mapped = services.map_model(model, request)
    route = services.router.resolve(mapped)
    ctx.mapped_model = mapped  # left empty when the name does not resolve (records, metrics)
    if services.virtual_keys is not None:  # allowlist, budget, limits (virtualkeys/guard.py)
        await services.virtual_keys.admit(ctx, mapped, len(raw))
    return body, route
