"""The aiohttp application: routes, the per-process Gateway object, start-up and shutdown."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from apex_ai_proxy.auth import Authenticator
from apex_ai_proxy.balancer import Balancer
from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.count_tokens import make_count_tokens_handler
from apex_ai_proxy.dispatch import Dispatcher, Operation
from apex_ai_proxy.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.mapping import MAPPING_HEADER, MappingError, map_model, parse_mapping
from apex_ai_proxy.passthrough import PROVIDER_HEADER
from apex_ai_proxy.passthrough.handler import Passthrough
from apex_ai_proxy.pipeline import (
    error_response,
    make_model_handler,
    validate_chat,
    validate_embeddings,
)
from apex_ai_proxy.responses_api import ResponsesAPI
from apex_ai_proxy.routing import Router
from apex_ai_proxy.telemetry import Recorder, render_metrics, set_keys_in_cooldown
from apex_ai_proxy.upstream import UpstreamClient

log = logging.getLogger("apex_ai_proxy")


class Gateway:
    """Everything one process needs to serve requests; built once from the config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.max_body = config.server.max_body_bytes
        self.auth = Authenticator(config.gateway_tokens)
        self.router = Router(config)
        retry = config.retry
        self.health = HealthState(
            retry.cooldown_base_s, retry.cooldown_max_s, retry.auth_failure_cooldown_s
        )
        self.balancer = Balancer(self.health)
        records = config.records
        self.recorder = Recorder(records, secrets=config.secrets())
        self.capture_raw = records.enabled and records.raw
        self.client = UpstreamClient()
        self.dispatcher = Dispatcher(
            self.client, self.health, self.balancer, retry, scrub=self.recorder.redactor.scrub
        )
        self.responses = ResponsesAPI(self)
        self.passthrough = Passthrough(self, config.passthrough)
        self.ready = False
        self._models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "apex-ai-proxy"}
                    for name in self.router.model_names()
                ],
            }
        )

    async def start(self) -> None:
        await self.client.start()
        await self.recorder.start()
        await self.responses.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.client.close()
        await self.passthrough.close()
        await self.recorder.stop(grace=5.0)
        await self.responses.close()

    def map_model(self, model: str, request: web.Request) -> str:
        """Configured `model_mapping`, then the X-APEX-AI-PROXY-MAPPING header's."""
        header = request.headers.get(MAPPING_HEADER)
        try:
            header_map = parse_mapping(header) if header else {}
        except MappingError as err:
            raise BadRequest(str(err), param=MAPPING_HEADER) from None
        return map_model(model, self.config.model_mapping, header_map)

    def record(self, ctx: RequestContext) -> None:
        """Hand the finished request to the recorder (never blocks; drops when full)."""
        if ctx.duration_ms is None:
            ctx.duration_ms = ctx.elapsed_ms()
        self.recorder.submit(ctx.to_record())

    # --- small endpoints ---------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.ready:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ready", "models": len(self.router.routes)})

    async def metrics(self, request: web.Request) -> web.Response:
        ctx = RequestContext("/metrics", "openai_chat")
        try:
            ctx.token_name = self.auth.check(request)
        except GatewayError as err:
            return error_response("openai_chat", err, ctx)
        for provider, count in self.health.cooling_by_provider().items():
            set_keys_in_cooldown(provider, count)
        body, content_type = render_metrics()
        resp = web.Response(body=body)
        resp.headers["content-type"] = content_type
        return resp

    async def list_models(self, request: web.Request) -> web.Response:
        ctx = RequestContext("/v1/models", "openai_chat")
        try:
            ctx.token_name = self.auth.check(request)
        except GatewayError as err:
            return error_response("openai_chat", err, ctx)
        resp = web.Response(body=self._models_body, content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        return resp


def _dialect_of_path(path: str) -> str:
    return "anthropic" if path.startswith("/v1/messages") else "openai_chat"


def _method_guard(gw: Gateway, handlers: dict[str, object], path: str):
    """One route per path; a method that path does not take gets 405 in the client's shape.

    A request naming a passthrough upstream goes there whatever its path and method.
    """
    allowed = ", ".join(sorted(handlers))
    passthrough = gw.passthrough.handle

    async def handle(request: web.Request) -> web.StreamResponse:
        if PROVIDER_HEADER in request.headers:
            return await passthrough(request)
        handler = handlers.get(request.method)
        if handler is None:
            ctx = RequestContext(path, _dialect_of_path(path))
            resp = error_response(
                ctx.client_dialect,
                MethodNotAllowed(
                    f"Method {request.method} is not allowed on {path}; use {allowed}."
                ),
                ctx,
            )
            resp.headers["allow"] = allowed
            return resp
        return await handler(request)  # type: ignore[operator]

    return handle


async def _not_found(request: web.Request) -> web.StreamResponse:
    if PROVIDER_HEADER in request.headers:
        return await request.app["gateway"].passthrough.handle(request)
    ctx = RequestContext(request.path, _dialect_of_path(request.path))
    return error_response(
        ctx.client_dialect,
        NotFound(
            f"Unknown route {request.method} {request.path}. This gateway serves /v1/chat/completions, "
            "/v1/messages, /v1/responses, /v1/embeddings and /v1/models.",
            code="unknown_route",
        ),
        ctx,
    )


def create_app(config: Config) -> web.Application:
    gw = Gateway(config)
    app = web.Application(
        client_max_size=config.server.max_body_bytes + 1, handler_args={"max_field_size": 65536}
    )
    app["gateway"] = gw

    routes: dict[str, dict[str, object]] = {
        "/healthz": {"GET": gw.healthz},
        "/readyz": {"GET": gw.readyz},
        "/v1/models": {"GET": gw.list_models},
        "/metrics": {"GET": gw.metrics},
        "/v1/chat/completions": {
            "POST": make_model_handler(
                gw, "/v1/chat/completions", Operation("openai_chat"), validate_chat
            )
        },
        "/v1/embeddings": {
            "POST": make_model_handler(
                gw, "/v1/embeddings", Operation("openai_chat", "embeddings"), validate_embeddings
            )
        },
        "/v1/messages": {
            "POST": make_model_handler(gw, "/v1/messages", Operation("anthropic"), validate_chat)
        },
        "/v1/messages/count_tokens": {"POST": make_count_tokens_handler(gw)},
        **gw.responses.routes(),
    }
    for path, handlers in routes.items():
        app.router.add_route("*", path, _method_guard(gw, handlers, path))
    app.router.add_route("*", "/{tail:.*}", _not_found)

    async def on_startup(app: web.Application) -> None:
        await gw.start()

    async def on_cleanup(app: web.Application) -> None:
        await gw.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def started_message(config: Config, host: str, port: int) -> str:
    providers = ", ".join(
        f"{name} ({p.kind}, {len(p.keys())} key(s))" for name, p in config.providers.items()
    )
    return (
        f"apex-ai-proxy listening on http://{host}:{port}/v1 — config: {config.source or 'built-in'}; "
        f"providers: {providers or 'none'}; models: {', '.join(config.models) or 'none'}"
    )
