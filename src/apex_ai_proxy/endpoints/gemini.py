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

import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import estimate_tokens, get_dialect
from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.dialects.gemini.json_array import JsonArrayTap
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import BadRequest, GatewayError, NotFound
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.pipeline import (
    error_response,
    internal_error,
    read_json_body,
    require_model,
    stream_started,
)
from apex_ai_proxy.telemetry.record import RawRecord
from apex_ai_proxy.upstream import CONNECTION_ERRORS

if TYPE_CHECKING:
    from apex_ai_proxy.http.server import Handler
    from apex_ai_proxy.routing import Route
    from apex_ai_proxy.server import Gateway

DIALECT = "gemini"
TOKEN_PLACES = (
    "an x-goog-api-key header, a ?key= query parameter or an Authorization: Bearer header"
)
GENERATE = {"generateContent": False, "streamGenerateContent": True}
METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
# Record endpoints name the method, never the model (records and metric labels stay bounded).
ENDPOINTS = {name: f"/v1beta/models:{name}" for name in METHODS}
MODELS_ENDPOINT = "/v1beta/models"


def is_gemini_path(path: str) -> bool:
    """Whether `path` is one of these routes (errors before routing use Google's shape)."""
    return path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path)


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


class GeminiAPI:
    """The Gemini routes over one Gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def routes(self, openai_models: Handler) -> dict[str, dict[str, Handler]]:
        """Routes to merge into the app's; `openai_models` keeps serving GET /v1/models."""

        async def v1_models(request: Request) -> Response:
            if is_google_client(request):
                return await self.list_models(request)
            return await openai_models(request)

        model_routes = {"GET": self.get_model, "POST": self.method}
        return {
            "/v1beta/models": {"GET": self.list_models},
            "/v1beta/models/{target:path}": model_routes,
            "/v1/models": {"GET": v1_models},
            "/v1/models/{target:path}": model_routes,
        }

    def authenticate(self, request: Request) -> str | None:
        auth = self.gw.auth
        given = (
            request.headers.get("x-goog-api-key")
            or request.query.get("key")
            or auth.presented(request)
        )
        return auth.verify(given, TOKEN_PLACES)

    # --- POST …/models/{model}:{method} --------------------------------------------------------

    async def method(self, request: Request) -> Response | StreamResponse:
        model, method = split_target(request.match_info["target"])
        if method in GENERATE:
            return await self.generate(request, model, GENERATE[method])
        if method == "countTokens":
            return await self.count_tokens(request, model)
        ctx = RequestContext.new(MODELS_ENDPOINT, DIALECT)
        err = NotFound(
            f"Unknown method '{method}' in {request.path}; this gateway serves "
            + ", ".join(f":{name}" for name in METHODS)
            + ".",
            code="unknown_route",
        )
        return self._answer(ctx, error_response(DIALECT, err, ctx))

    async def _accept(
        self, request: Request, ctx: RequestContext, target: str
    ) -> tuple[dict, Route]:
        """Authenticate, read the body, resolve the model of the path (like accept_model_request
        for the APIs whose body names the model)."""
        gw = self.gw
        ctx.token_name = self.authenticate(request)
        body, raw = await read_json_body(request, gw.max_body)
        ctx.bytes_in = len(raw)
        if gw.capture_raw:
            ctx.raw = RawRecord(request.headers.copy(), raw)
        model = ctx.requested_model = model_name(target)
        mapped = gw.map_model(model, request)
        route = gw.router.resolve(mapped)
        ctx.mapped_model = mapped
        body["model"] = model  # the neutral form's model; a Gemini upstream's body drops it
        return body, route

    async def generate(
        self, request: Request, target: str, stream: bool
    ) -> Response | StreamResponse:
        ctx = RequestContext.new(
            ENDPOINTS["streamGenerateContent" if stream else "generateContent"], DIALECT
        )
        try:
            body, route = await self._accept(request, ctx, target)
            if not isinstance(body.get("contents"), list):
                raise BadRequest("'contents' is required and must be an array", param="contents")
            body["stream"] = ctx.stream = stream
            json_array = stream and request.query.get("alt") != "sse"
            op = Operation(DIALECT, tap=JsonArrayTap() if json_array else None)
            response = await self.gw.dispatcher.run(request, ctx, op, route, body, stream, {})
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(DIALECT, err, ctx)
        except Exception as exc:
            if stream_started(ctx):
                raise
            response = internal_error(DIALECT, ctx, exc)
        self.gw.record(ctx)
        return response

    async def count_tokens(self, request: Request, target: str) -> Response:
        """`{"totalTokens": N}`: counted by the first Gemini upstream of the route when there is
        one, else estimated; `x-apex-token-count` says which (as /v1/messages/count_tokens)."""
        ctx = RequestContext.new(ENDPOINTS["countTokens"], DIALECT)
        try:
            body, route = await self._accept(request, ctx, target)
            inner = body.get("generateContentRequest")
            request_body = dict(inner) if isinstance(inner, dict) else body
            if not isinstance(request_body.get("contents", []), list):
                raise BadRequest("'contents' must be an array", param="contents")
            counted = await self._count_upstream(ctx, route, body)
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
            ctx.status = 200
        except GatewayError as err:
            resp = error_response(DIALECT, err, ctx)
        except Exception as exc:
            resp = internal_error(DIALECT, ctx, exc)
        return self._answer(ctx, resp)

    async def _count_upstream(self, ctx: RequestContext, route: Route, body: dict) -> dict | None:
        """The first available Gemini upstream's own count; None when there is none or it fails."""
        gw = self.gw
        for candidate, key in gw.balancer.candidates(route):
            adapter = candidate.adapter
            if adapter.dialect != DIALECT:
                continue
            upstream_model = candidate.upstream_model.removeprefix("models/")
            payload = {k: v for k, v in body.items() if k != "model"}
            inner = payload.get("generateContentRequest")
            if isinstance(inner, dict):  # its model must name the upstream's
                payload["generateContentRequest"] = {**inner, "model": f"models/{upstream_model}"}
            url = adapter.chat_url(adapter.base_for(candidate), upstream_model, False)
            url = url.removesuffix(":generateContent") + ":countTokens"
            started = time.monotonic()
            try:
                upstream = await adapter.send(
                    gw.client,
                    adapter.build(candidate, key, url, dumps(payload), None),
                    *gw.dispatcher.settings_for(candidate),
                )
                raw = await upstream.read(adapter.config.max_response_bytes)
            except CONNECTION_ERRORS:
                return None
            ctx.provider, ctx.upstream_model = candidate.provider, candidate.upstream_model
            ctx.ttfb_ms = (time.monotonic() - started) * 1000.0
            try:
                answer = orjson.loads(raw) if upstream.status == 200 else None
            except orjson.JSONDecodeError:
                answer = None
            if isinstance(answer, dict) and isinstance(answer.get("totalTokens"), int):
                return answer
            return None
        return None

    # --- GET …/models[/{model}] ----------------------------------------------------------------

    def _model_object(self, name: str) -> dict:
        return {
            "name": f"models/{name}",
            "baseModelId": name,
            "version": "apex-ai-proxy",
            "displayName": name,
            "description": "A model of the Apex AI Proxy gateway.",
            "supportedGenerationMethods": METHODS,
        }

    async def list_models(self, request: Request) -> Response:
        ctx = RequestContext.new(MODELS_ENDPOINT, DIALECT)
        try:
            ctx.token_name = self.authenticate(request)
        except GatewayError as err:
            return self._answer(ctx, error_response(DIALECT, err, ctx))
        models = [self._model_object(name) for name in self.gw.router.model_names()]
        return self._answer(ctx, self._json({"models": models}, ctx))

    async def get_model(self, request: Request) -> Response:
        """One model, in Google's shape for Google's clients and OpenAI's for the others
        (GET /v1/models/{model} is OpenAI's "retrieve model" too)."""
        google = request.path.startswith("/v1beta/") or is_google_client(request)
        dialect = DIALECT if google else "openai_chat"
        ctx = RequestContext.new(MODELS_ENDPOINT if google else "/v1/models", dialect)
        try:
            ctx.token_name = self.authenticate(request)
            name = model_name(unquote(request.match_info["target"]))
            self.gw.router.resolve(self.gw.map_model(name, request))
        except GatewayError as err:
            return self._answer(ctx, error_response(dialect, err, ctx))
        if google:
            body = self._model_object(name)
        else:
            body = {"id": name, "object": "model", "created": 0, "owned_by": "apex-ai-proxy"}
        return self._answer(ctx, self._json(body, ctx))

    def _json(self, body: dict, ctx: RequestContext) -> Response:
        resp = Response(body=orjson.dumps(body), content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        ctx.status = 200
        return resp

    def _answer(self, ctx: RequestContext, resp: Response) -> Response:
        self.gw.record(ctx)
        return resp
