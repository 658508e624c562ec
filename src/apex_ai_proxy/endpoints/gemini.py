"""The Gemini API for clients: Google's SDKs and the Gemini CLI on any upstream.

    POST /v1beta/models/{model}:generateContent          whole answer
    POST /v1beta/models/{model}:streamGenerateContent    SSE with ?alt=sse, else one JSON array
    POST /v1beta/models/{model}:countTokens              exact from a Gemini upstream, else estimated
    GET  /v1beta/models, /v1beta/models/{model}          the gateway's models in Google's shape
    (the same under /v1/: the SDKs use both; GET /v1/models stays OpenAI's list unless the
    client is a Google one)

The token comes in `x-goog-api-key`, `?key=` or as a Bearer token. `{model}` goes through the
gateway's routing like the `model` field of the other APIs (mapping, aliases, `model%23provider`
for `model#provider`: a raw `#` would end the URL). Errors are Google's shape. A Gemini
upstream gets the client's body as it came (the model only in the URL); any other goes through
the neutral form (dialects/gemini).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import estimate_tokens, get_dialect
from apex_ai_proxy.dialects.gemini.json_array import JsonArrayTap
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import BadRequest, NotFound, dialect_of_path
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.routing import Route
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.record import RawRecord

from .intake import read_json_body, require_model

DIALECT = "gemini"
TOKEN_PLACES = (
    "an x-goog-api-key header, a ?key= query parameter or an Authorization: Bearer header"
)
GENERATE = {"generateContent": False, "streamGenerateContent": True}
METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
# Record endpoints name the method, never the model (records and metric labels stay bounded).
ENDPOINTS = {name: f"/v1beta/models:{name}" for name in METHODS}
MODELS_ENDPOINT = "/v1beta/models"
WHOLE = Operation(DIALECT)


def is_gemini_path(path: str) -> bool:
    """Whether `path` is one of these routes (errors before routing use Google's shape)."""
    return dialect_of_path(path) == DIALECT


def is_google_client(request: Request) -> bool:
    """Google's SDKs name themselves in x-goog-api-client; a Google key header or ?key= says so too."""
    headers = request.headers
    return "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in request.query


def split_target(target: str) -> tuple[str, str]:
    """`gemini-2.5-pro:generateContent` -> (model, method). The last colon splits: model names
    may hold colons themselves (`llama3:8b`)."""
    model, colon, method = unquote(target).rpartition(":")
    if not colon:
        return unquote(target), ""
    return model, method


def model_name(target: str) -> str:
    """The model named by a path: `models/` (the resource name's prefix) taken off."""
    return require_model({"model": target.removeprefix("models/")})


def authenticator(services: Services) -> Callable[[Request], str | None]:
    """The gateway token where Google's clients send it (the lifecycle's check for these routes)."""
    auth = services.auth

    def authenticate(request: Request) -> str | None:
        given = (
            request.headers.get("x-goog-api-key")
            or request.query.get("key")
            or auth.presented(request)
        )
        return auth.verify(given, TOKEN_PLACES)

    return authenticate


# --- POST …/models/{model}:{method} ------------------------------------------------------------


def method(services: Services) -> Handle:
    """generateContent, streamGenerateContent or countTokens, by the path's last colon."""

    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        model, name = split_target(request.match_info["target"])
        if name in GENERATE:
            ctx.endpoint = ENDPOINTS[name]
            return await _generate(services, request, ctx, model, GENERATE[name])
        if name == "countTokens":
            ctx.endpoint = ENDPOINTS[name]
            return await _count_tokens(services, request, ctx, model)
        raise NotFound(
            f"Unknown method '{name}' in {request.path}; this gateway serves "
            + ", ".join(f":{known}" for known in METHODS)
            + ".",
            code="unknown_route",
        )

    return handle


async def _accept(
    services: Services, request: Request, ctx: RequestContext, target: str, count: bool = False
) -> tuple[dict, Route]:
    """Read the body and resolve the model of the path (intake.accept_model_request for an API
    whose model is in the path, not the body). `count`: countTokens, which a virtual key's
    allowlist governs but its budget and limits do not (as /v1/messages/count_tokens)."""
    body, raw = await read_json_body(request, services.max_body)
    ctx.bytes_in = len(raw)
    if services.capture_raw:
        ctx.raw = RawRecord(request.headers.copy(), raw)
    model = ctx.requested_model = model_name(target)
    mapped = services.map_model(model, request)
    route = services.router.resolve(mapped)
    ctx.mapped_model = mapped
    if services.virtual_keys is not None:
        if count:
            services.virtual_keys.allow_model(ctx, mapped)
        else:
            await services.virtual_keys.admit(ctx, mapped, len(raw))
    body["model"] = model  # the neutral form's model; a Gemini upstream's body drops it
    return body, route


async def _generate(
    services: Services, request: Request, ctx: RequestContext, target: str, stream: bool
) -> StreamResponse:
    body, route = await _accept(services, request, ctx, target)
    if not isinstance(body.get("contents"), list):
        raise BadRequest("'contents' is required and must be an array", param="contents")
    body["stream"] = ctx.stream = stream
    json_array = stream and request.query.get("alt") != "sse"
    op = Operation(DIALECT, tap=JsonArrayTap()) if json_array else WHOLE
    return await services.dispatcher.run(request, ctx, op, route, body, stream, {})


async def _count_tokens(
    services: Services, request: Request, ctx: RequestContext, target: str
) -> Response:
    """`{"totalTokens": N}`: counted by the route's Gemini upstreams through the dispatcher when
    one can, else estimated; `x-apex-token-count` says which (as /v1/messages/count_tokens)."""
    body, route = await _accept(services, request, ctx, target, count=True)
    inner = body.get("generateContentRequest")
    request_body = dict(inner) if isinstance(inner, dict) else body
    if not isinstance(request_body.get("contents", []), list):
        raise BadRequest("'contents' must be an array", param="contents")
    counted = await services.dispatcher.count_tokens(request, ctx, route, body, {}, DIALECT)
    if counted is None:
        request_body = {**request_body, "model": body["model"]}
        request_body.setdefault("contents", [])
        neutral = get_dialect(DIALECT).decode_request(request_body)
        counted, how = {"totalTokens": estimate_tokens(neutral)}, "estimate"
    else:
        how = "exact"
    resp = Response(body=orjson.dumps(counted), content_type="application/json")
    resp.headers["x-request-id"] = ctx.request_id
    resp.headers["x-apex-token-count"] = how
    return resp


# --- GET …/models[/{model}] ------------------------------------------------------------------


def _model_object(name: str) -> dict:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "apex-ai-proxy",
        "displayName": name,
        "description": "A model of the Apex AI Proxy gateway.",
        "supportedGenerationMethods": METHODS,
    }


def _json(body: dict, ctx: RequestContext) -> Response:
    resp = Response(body=orjson.dumps(body), content_type="application/json")
    resp.headers["x-request-id"] = ctx.request_id
    return resp


def list_models(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        names = services.router.model_names()
        if services.virtual_keys is not None:  # a virtual key lists what its allowlist allows
            names = services.virtual_keys.allowed_models(ctx.token_name, names)
        return _json({"models": [_model_object(name) for name in names]}, ctx)

    return handle


def v1_models(services: Services, openai_models: Handle) -> Handle:
    """GET /v1/models: Google's list for Google's clients, OpenAI's for the others. The route
    authenticates here (auth=False in the lifecycle): the client decides the error dialect."""
    google_list = list_models(services)
    authenticate = authenticator(services)

    async def handle(request: Request, ctx: RequestContext) -> Response:
        if not is_google_client(request):
            ctx.token_name = services.auth.check(request)
            return await openai_models(request, ctx)
        ctx.client_dialect, ctx.endpoint = DIALECT, MODELS_ENDPOINT
        ctx.token_name = authenticate(request)
        return await google_list(request, ctx)

    return handle


def get_model(services: Services) -> Handle:
    """One model, in Google's shape for Google's clients and OpenAI's for the others (GET
    /v1/models/{model} is OpenAI's "retrieve model" too). Authenticates itself (auth=False)."""
    authenticate = authenticator(services)

    async def handle(request: Request, ctx: RequestContext) -> Response:
        google = request.path.startswith("/v1beta/") or is_google_client(request)
        if google:
            ctx.client_dialect, ctx.endpoint = DIALECT, MODELS_ENDPOINT
        else:
            ctx.client_dialect, ctx.endpoint = "openai_chat", "/v1/models"
        ctx.token_name = authenticate(request)
        name = model_name(unquote(request.match_info["target"]))
        services.router.resolve(services.map_model(name, request))
        if google:
            return _json(_model_object(name), ctx)
        return _json(
            {"id": name, "object": "model", "created": 0, "owned_by": "apex-ai-proxy"}, ctx
        )

    return handle
