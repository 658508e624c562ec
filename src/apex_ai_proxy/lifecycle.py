"""One request's life, the same for every endpoint:

    context → authenticate → handle → (error rendered in the client's dialect) → record

`endpoint(...)` wraps an endpoint's `handle(request, ctx)` into the HTTP server's handler; every
route, the passthrough relay and the 404 / 405 / 401 rejections go through it, and this is the
one module that creates a RequestContext or builds an error response. A handler only raises
GatewayError for the client to see; anything else is a bug, answered with the last-resort 500
(unless a stream has already started: then only cutting the connection tells the client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import (
    GatewayError,
    MethodNotAllowed,
    NotFound,
    dialect_of_path,
    error_body,
)
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.http.server import Handler
from apex_ai_proxy.services import Services

log = logging.getLogger("apex_ai_proxy.lifecycle")

Handle = Callable[[Request, RequestContext], Awaitable[StreamResponse]]
# Checks the request's gateway token; returns its name, raises Unauthorized.
Authenticate = Callable[[Request], str | None]


def endpoint(
    services: Services,
    name: str | None,
    client_dialect: str | None,
    handle: Handle,
    *,
    auth: bool = True,
    authenticate: Authenticate | None = None,
    record: bool = True,
    last_resort: bool = True,
) -> Handler:
    """The HTTP handler serving `handle` as endpoint `name` to clients of `client_dialect`;
    both None: the endpoint is the request's path, and the path decides the dialect (404, 405,
    passthrough). A handler may change `ctx.client_dialect` and `ctx.mode` before it raises
    (passthrough learns its dialect from a header).

    `auth=False`: the handler checks the token itself, or none is needed. `authenticate`: where
    the token is looked for (default: Bearer or x-api-key; Gemini's routes also read
    x-goog-api-key and ?key=; the admin API takes admin tokens). `record=False`: no request
    record (/metrics, the console's polling). `last_resort=False`: an unexpected exception
    propagates to the HTTP server (passthrough: the relay may have sent the head already, which
    the context does not know).

    Built once per route at start-up; per request it is one coroutine around the handler's
    (the model endpoints' intake reads the body itself to keep the count as it was)."""

    check = authenticate or services.auth.check

    async def serve(request: Request) -> StreamResponse:
        if name is not None:
            ctx = RequestContext.new(name, client_dialect)  # type: ignore[arg-type]
        else:  # no route claims it (404, 405) or any path may come (passthrough)
            ctx = RequestContext.new(request.path, dialect_of_path(request.path))
        try:
            if auth:
                ctx.token_name = check(request)
            response = await handle(request, ctx)
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(ctx.client_dialect, err, ctx)
        except Exception as exc:
            if not last_resort or stream_started(ctx):
                services.release(ctx)  # not recorded, but a virtual key's slot is given back
                raise
            response = internal_error(ctx.client_dialect, ctx, exc)
        if record:
            services.record(ctx)
        return response

    return serve


# --- rejections -------------------------------------------------------------------------------


async def _unknown_route(request: Request, ctx: RequestContext) -> Response:
    raise NotFound(
        f"Unknown route {request.method} {request.path}. This gateway serves /v1/chat/completions, "
        "/v1/messages, /v1/responses, /v1/embeddings, /v1/models and the Gemini API "
        "(/v1beta/models/{model}:generateContent).",
        code="unknown_route",
    )


async def _wrong_method(request: Request, ctx: RequestContext) -> Response:
    listed = request.match_info["allowed"]
    raise MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.path}; use {listed}.",
        headers={"allow": listed},
    )


def not_found(services: Services) -> Handler:
    """The HTTP server's answer when no route matches the path."""
    return endpoint(services, None, None, _unknown_route, auth=False)


def method_not_allowed(
    services: Services,
) -> Callable[[Request, list[str]], Awaitable[StreamResponse]]:
    """The HTTP server's answer when the path matches but its method does not."""
    serve = endpoint(services, None, None, _wrong_method, auth=False)

    def refuse(request: Request, allowed: list[str]) -> Awaitable[StreamResponse]:
        # The server matched no method, so match_info is free to carry what it found.
        request.match_info = {"allowed": ", ".join(allowed)}
        return serve(request)

    return refuse


def early_refusal(request: Request, authenticate: Authenticate) -> Response | None:
    """Before `100 Continue`: the 401 a request without a valid gateway token gets, or None to
    let its body come. No context, no record: the request is answered again, and recorded, if
    the client sends its body anyway."""
    try:
        authenticate(request)
    except GatewayError as err:
        body = error_body(dialect_of_path(request.path), err)
        return Response(err.status, body, content_type="application/json")
    return None


# --- error responses --------------------------------------------------------------------------


def stream_started(ctx: RequestContext) -> bool:
    """A streamed answer has sent its head (the dispatcher sets ttfb_ms right after): too late
    for an error response, only cutting the connection tells the client."""
    return ctx.stream and ctx.ttfb_ms is not None


def internal_error(dialect: str, ctx: RequestContext, exc: Exception) -> Response:
    """The last resort: a bug answered with a 500 in the client's dialect, logged once with its
    traceback. Bad input must never get here; the request id ties the answer to the log."""
    log.error("unexpected error in %s (request %s)", ctx.endpoint, ctx.request_id, exc_info=exc)
    err = GatewayError(
        f"Internal gateway error (request {ctx.request_id}); it is logged, please report it.",
        code="internal_error",
    )
    return error_response(dialect, err, ctx)


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
