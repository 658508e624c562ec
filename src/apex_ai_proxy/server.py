"""The application: routes, the per-process Gateway object, start-up and shutdown."""

from __future__ import annotations

import logging

import orjson

from apex_ai_proxy.auth import Authenticator
from apex_ai_proxy.balancer import Balancer
from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.count_tokens import make_count_tokens_handler
from apex_ai_proxy.dispatch import Dispatcher, Operation
from apex_ai_proxy.endpoints.gemini import GeminiAPI, is_gemini_path
from apex_ai_proxy.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    error_body,
    protocol_error_body,
)
from apex_ai_proxy.health import CooldownTable, HealthState, unit_names
from apex_ai_proxy.http import (
    HttpServer,
    PathRouter,
    Request,
    Response,
    ServerLimits,
    json_response,
)
from apex_ai_proxy.http.server import Handler
from apex_ai_proxy.mapping import MAPPING_HEADER, MappingError, map_model, parse_mapping
from apex_ai_proxy.passthrough import PROVIDER_HEADER
from apex_ai_proxy.passthrough.handler import TOKEN_HEADER, Passthrough
from apex_ai_proxy.pipeline import (
    error_response,
    make_model_handler,
    validate_chat,
    validate_embeddings,
)
from apex_ai_proxy.responses_api import ResponsesAPI
from apex_ai_proxy.routing import Router
from apex_ai_proxy.telemetry import (
    Recorder,
    allow_label_values,
    render_metrics,
    set_keys_in_cooldown,
)
from apex_ai_proxy.upstream import UpstreamClient

log = logging.getLogger("apex_ai_proxy")
PROVIDER_HEADER_LOWER = PROVIDER_HEADER.lower()


class Gateway:
    """Everything one process needs to serve requests; built once from the config."""

    def __init__(self, config: Config, health_table: CooldownTable | None = None) -> None:
        self.config = config
        self.max_body = config.server.max_body_bytes
        self.auth = Authenticator(config.gateway_tokens)
        self.router = Router(config)
        allow_label_values(self.router.model_names(), self.router.adapters)  # metrics labels
        retry = config.retry
        # Cooldowns go in `health_table` when the launcher shares one between its workers.
        if health_table is None:
            health_table = CooldownTable(unit_names(self.router))
        self.health = HealthState(
            retry.cooldown_base_s,
            retry.cooldown_max_s,
            retry.auth_failure_cooldown_s,
            health_table,
        )
        self.health_sync = None
        if config.health.backend == "redis":  # cooldowns shared with other replicas too
            from apex_ai_proxy.health.redis_sync import RedisHealthSync

            self.health_sync = RedisHealthSync(self.health, config.health)
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
        if self.health_sync is not None:
            self.health_sync.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.client.close()
        await self.passthrough.close()
        await self.recorder.stop(grace=5.0)
        await self.responses.close()
        if self.health_sync is not None:
            await self.health_sync.close()

    def map_model(self, model: str, request: Request) -> str:
        """Configured `model_mapping`, then the X-APEX-AI-PROXY-MAPPING header's."""
        header = request.headers.get(MAPPING_HEADER)
        try:
            header_map = parse_mapping(header) if header else {}
        except MappingError as err:
            raise BadRequest(str(err), param=MAPPING_HEADER) from None
        return map_model(model, self.config.model_mapping, header_map)

    def record(self, ctx: RequestContext) -> None:
        """Hand the finished request to the recorder (never blocks; drops when full)."""
        self.recorder.submit(ctx.finish())

    # --- small endpoints ---------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if not self.ready:
            return json_response({"status": "starting"}, status=503)
        body: dict[str, object] = {"status": "ready", "models": len(self.router.routes)}
        # Redis down is 200 "degraded", not 503: every replica shares the one Redis, so a load
        # balancer that pulls 503 replicas would take chat down everywhere for an outage that
        # only stops stored responses and shared cooldowns.
        down = [
            name
            for name, part in (("responses_store", self.responses), ("health", self.health_sync))
            if part is not None and not part.reachable
        ]
        if down:
            body |= {"status": "degraded", "redis": "unreachable", "unreachable": down}
        return json_response(body)

    async def metrics(self, request: Request) -> Response:
        ctx = RequestContext.new("/metrics", "openai_chat")
        try:
            ctx.token_name = self.auth.check(request)
        except GatewayError as err:
            return error_response("openai_chat", err, ctx)
        for provider, count in self.health.cooling_by_provider().items():
            set_keys_in_cooldown(provider, count)
        body, content_type = render_metrics()
        resp = Response(body=body)
        resp.headers["content-type"] = content_type
        return resp

    async def list_models(self, request: Request) -> Response:
        ctx = RequestContext.new("/v1/models", "openai_chat")
        try:
            ctx.token_name = self.auth.check(request)
        except GatewayError as err:
            resp = error_response("openai_chat", err, ctx)
        else:
            resp = Response(body=self._models_body, content_type="application/json")
            resp.headers["x-request-id"] = ctx.request_id
            ctx.status = 200
        self.record(ctx)
        return resp


def _dialect_of_path(path: str) -> str:
    if is_gemini_path(path):
        return "gemini"
    return "anthropic" if path.startswith("/v1/messages") else "openai_chat"


async def _method_not_allowed(request: Request, allowed: list[str]) -> Response:
    ctx = RequestContext.new(request.path, _dialect_of_path(request.path))
    listed = ", ".join(allowed)
    err = MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.path}; use {listed}."
    )
    resp = error_response(ctx.client_dialect, err, ctx)
    resp.headers["allow"] = listed
    request.app.gateway.record(ctx)
    return resp


async def _not_found(request: Request) -> Response:
    ctx = RequestContext.new(request.path, _dialect_of_path(request.path))
    resp = error_response(
        ctx.client_dialect,
        NotFound(
            f"Unknown route {request.method} {request.path}. This gateway serves /v1/chat/completions, "
            "/v1/messages, /v1/responses, /v1/embeddings, /v1/models and the Gemini API "
            "(/v1beta/models/{model}:generateContent).",
            code="unknown_route",
        ),
        ctx,
    )
    request.app.gateway.record(ctx)
    return resp


class App:
    """A Gateway behind its HTTP server: `start` listens, `stop` drains and closes."""

    def __init__(self, config: Config, health_table: CooldownTable | None = None) -> None:
        self.gateway = gw = Gateway(config, health_table)
        self.gemini = GeminiAPI(gw)
        router = PathRouter()
        routes: dict[str, dict[str, Handler]] = {
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
                    gw,
                    "/v1/embeddings",
                    Operation("openai_chat", "embeddings"),
                    validate_embeddings,
                )
            },
            "/v1/messages": {
                "POST": make_model_handler(
                    gw, "/v1/messages", Operation("anthropic"), validate_chat
                )
            },
            "/v1/messages/count_tokens": {"POST": make_count_tokens_handler(gw)},
            **gw.responses.routes(),
            **self.gemini.routes(gw.list_models),
        }
        for path, methods in routes.items():
            router.add(path, methods)
        self.server = HttpServer(
            router,
            not_found=_not_found,
            method_not_allowed=_method_not_allowed,
            before_route=self._passthrough,
            early_check=self._before_continue,
            limits=server_limits(config),
            error_body=protocol_error_body,
            app=self,
        )

    def _before_continue(self, request: Request) -> Response | None:
        """Before `100 Continue`: is the client allowed to send its body? The gateway token is
        checked as the handler will check it (passthrough's own header, none for probes)."""
        gw = self.gateway
        if dict.__contains__(request.headers, PROVIDER_HEADER_LOWER):
            passthrough = gw.passthrough
            if passthrough.client is None or passthrough.config.open:
                return None  # the handler answers (disabled) or needs no token
            header: str | None = TOKEN_HEADER
        elif request.path in ("/healthz", "/readyz"):
            return None
        else:
            header = None
        try:
            if header is None and is_gemini_path(request.path):
                self.gemini.authenticate(request)  # x-goog-api-key, ?key= or Bearer
            else:
                gw.auth.check(request, header)
        except GatewayError as err:
            body = error_body(_dialect_of_path(request.path), err)
            return Response(err.status, body, content_type="application/json")
        return None

    def _passthrough(self, request: Request):
        """A request naming a passthrough upstream goes there, whatever its path and method."""
        # Stored names are lower-case already: skip the case-folding lookup on every request.
        if dict.__contains__(request.headers, PROVIDER_HEADER_LOWER):
            return self.gateway.passthrough.handle(request)
        return None

    async def start(
        self, host: str | None = "127.0.0.1", port: int = 0, *, sock=None, reuse_port: bool = False
    ) -> int:
        """Start the gateway and listen; returns the bound port."""
        await self.gateway.start()
        return await self.server.listen(host, port, sock=sock, reuse_port=reuse_port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests and streams in flight finish, then close everything."""
        if grace is None:
            grace = self.gateway.config.server.shutdown_grace_s
        await self.server.shutdown(grace)
        await self.gateway.stop()


def server_limits(config: Config) -> ServerLimits:
    server = config.server
    return ServerLimits(
        max_body=server.max_body_bytes,
        max_target=server.max_target_bytes,
        max_header_count=server.max_header_count,
        max_header_bytes=server.max_header_bytes,
        max_pipelined=server.max_pipelined,
        header_timeout=server.header_timeout_s,
        body_timeout=server.body_timeout_s,
        keep_alive_timeout=server.keep_alive_timeout_s,
    )


def create_app(config: Config, health_table: CooldownTable | None = None) -> App:
    """`health_table`: a shared `CooldownTable` from the launcher of several workers."""
    return App(config, health_table)


def started_message(config: Config, host: str, port: int) -> str:
    providers = ", ".join(
        f"{name} ({p.kind}, {len(p.keys())} key(s))" for name, p in config.providers.items()
    )
    return (
        f"apex-ai-proxy listening on http://{host}:{port}/v1 — config: {config.source or 'built-in'}; "
        f"providers: {providers or 'none'}; models: {', '.join(config.models) or 'none'}"
    )
