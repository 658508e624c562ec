"""The composition root: builds the Services once, mounts every endpoint on the one lifecycle,
starts and stops the process's gateway. Nothing imports this module but the CLI (and tests).

Every route below is `endpoint(services, path, client dialect, handler)` (lifecycle.py), and so
are the requests no route claims: passthrough (selected by its header before the route table),
unknown paths (404) and methods (405). The probes (/healthz, /readyz) are plain handlers.
"""

from __future__ import annotations

import logging

from apex_ai_proxy.config import Config
from apex_ai_proxy.endpoints import (
    admin,
    chat,
    console,
    embeddings,
    gemini,
    messages,
    models,
    ops,
    passthrough,
    responses,
)
from apex_ai_proxy.errors import protocol_error_body
from apex_ai_proxy.health import CooldownTable, is_endpoint
from apex_ai_proxy.http import HttpServer, PathRouter, Request, Response, ServerLimits
from apex_ai_proxy.http.server import Handler
from apex_ai_proxy.lifecycle import early_refusal, endpoint, method_not_allowed, not_found
from apex_ai_proxy.reload import (
    ReloadChanges,
    ReloadRefused,
    describe,
    read_config,
    restart_sections,
)
from apex_ai_proxy.services import Services

log = logging.getLogger("apex_ai_proxy")


def route_table(services: Services) -> dict[str, dict[str, Handler]]:
    s = services
    served = [  # method, path, client dialect (errors are rendered in it), handler
        ("POST", "/v1/chat/completions", "openai_chat", chat.handler(s)),
        ("POST", "/v1/embeddings", "openai_chat", embeddings.handler(s)),
        ("POST", "/v1/messages", "anthropic", messages.handler(s)),
        ("POST", "/v1/messages/count_tokens", "anthropic", messages.count_tokens_handler(s)),
        ("POST", "/v1/responses", "responses", responses.create(s)),
        ("GET", "/v1/responses/{id}", "responses", responses.retrieve(s)),
        ("DELETE", "/v1/responses/{id}", "responses", responses.delete(s)),
        ("GET", "/v1/responses/{id}/input_items", "responses", responses.input_items(s)),
        ("POST", "/v1/responses/{id}/cancel", "responses", responses.cancel(s)),
    ]
    metrics = endpoint(s, "/metrics", "openai_chat", ops.metrics(s), record=False)
    routes: dict[str, dict[str, Handler]] = {
        "/healthz": {"GET": ops.healthz},  # the probes: plain handlers (see endpoints/ops.py)
        "/readyz": {"GET": ops.readyz(s)},
        "/metrics": {"GET": metrics},
    }
    for method, path, dialect, handle in served:
        routes.setdefault(path, {})[method] = endpoint(s, path, dialect, handle)
    # Google's API, under /v1beta/ and /v1/ (the SDKs use both): the token may also come in
    # x-goog-api-key or ?key=. GET /v1/models and GET …/models/{model} answer Google's and
    # OpenAI's clients alike, in the client's shape: they authenticate themselves (auth=False).
    google = gemini.authenticator(s)
    listing = gemini.v1_models(s, models.handler(s))
    routes["/v1/models"] = {"GET": endpoint(s, "/v1/models", "openai_chat", listing, auth=False)}
    routes["/v1beta/models"] = {
        "GET": endpoint(
            s, gemini.MODELS_ENDPOINT, "gemini", gemini.list_models(s), authenticate=google
        )
    }
    one_model = endpoint(s, gemini.MODELS_ENDPOINT, "gemini", gemini.get_model(s), auth=False)
    model_method = endpoint(
        s, gemini.MODELS_ENDPOINT, "gemini", gemini.method(s), authenticate=google
    )
    for path in ("/v1beta/models/{target:path}", "/v1/models/{target:path}"):
        routes[path] = {"GET": one_model, "POST": model_method}
    # The admin API: admin tokens only (auth.AdminAuth), never a client's. The login route
    # takes its token in the body; the console's polling GETs are not recorded.
    for method, path, handle in admin.routes(s):
        check = s.admin.require_enabled if (method, path) == admin.LOGIN else s.admin.check
        routes.setdefault(path, {})[method] = endpoint(
            s, path, "openai_chat", handle, authenticate=check, record=method != "GET"
        )
    # The console's static files: no data in them (that is behind /admin/), off with the API.
    ui = endpoint(s, console.PATH, "openai_chat", console.handler(s), auth=False, record=False)
    for path in console.PATHS:
        routes[path] = {"GET": ui}
    return routes


class App:
    """The Services behind their HTTP server: `start` listens, `stop` drains and closes,
    `reload` applies the config file again between requests (reload.py)."""

    def __init__(self, config: Config, health_table: CooldownTable | None = None) -> None:
        self.services = Services(config, health_table)
        self.server = HttpServer(
            PathRouter(),
            not_found=not_found(self.services),
            method_not_allowed=method_not_allowed(self.services),
            early_check=self._before_continue,
            limits=server_limits(config),
            error_body=protocol_error_body,  # the HTTP layer's own 4xx, in the path's dialect
            app=self,
        )
        self._mount(self.services)

    def _mount(self, services: Services) -> None:
        """Serve `services` from the next request on. Every handler reads the Services it was
        built with, so swapping the server's four entry points (no await between them) is the
        whole switch: a request or stream in flight finishes on the objects it started with."""
        router = PathRouter()
        for path, methods in route_table(services).items():
            router.add(path, methods)
        # Passthrough's token is its own header (or none): the lifecycle's check is off.
        relay = endpoint(
            services, None, None, passthrough.handler(services), auth=False, last_resort=False
        )
        services.reload = self.reload
        server = self.server
        server.router = router
        server.not_found = not_found(services)
        server.method_not_allowed = method_not_allowed(services)
        server.before_route = passthrough.route(relay)
        self._google_auth = gemini.authenticator(services)
        self.services = services

    def reload(self) -> ReloadChanges:
        """Read the config again from where it came and apply it; raises ReloadRefused (with
        check's lines) and changes nothing when it is not valid. Synchronous on purpose: no
        request runs between the first and the last step."""
        running = self.services
        config, needs_restart = restart_sections(running.config, read_config(running.config.source))
        services = Services(config, previous=running)
        changes = describe(running.config, config, running.router, services.router)
        unshared = services.carry_over(running)  # from here on, nothing may fail
        changes.needs_restart = needs_restart
        shared = running.health.table.shared
        changes.keys_not_shared = (
            sorted(n for n in unshared if not is_endpoint(n)) if shared else []
        )
        self._mount(services)
        return changes

    def reload_logged(self) -> None:
        """SIGHUP: reload, and say in the log what changed or why the file was refused."""
        try:
            changes = self.reload()
        except ReloadRefused as refused:
            for line in refused.lines:
                log.error("%s", line)
            log.error("config reload refused: still serving the previous config")
            return
        except Exception:  # a bug: logged with its traceback; nothing was swapped yet
            log.exception("config reload failed: still serving the previous config")
            return
        log.info("config reloaded from %s: %s", self.services.config.source, changes.summary())
        if changes.needs_restart:
            log.warning("needs a restart to apply: %s", ", ".join(changes.needs_restart))
        if changes.keys_not_shared:
            log.warning(
                "added keys %s: cooldowns are per worker until a restart",
                ", ".join(changes.keys_not_shared),
            )

    def _before_continue(self, request: Request) -> Response | None:
        """Before `100 Continue`: is the client allowed to send its body? The gateway token is
        checked as the handler will check it (passthrough's own header, none for probes)."""
        if passthrough.selects(request):
            return passthrough.early_check(self.services, request)
        if request.path in ops.PROBES:
            return None
        if gemini.is_gemini_path(request.path):
            return early_refusal(request, self._google_auth)
        if (request.method, request.path) == admin.LOGIN:
            return early_refusal(request, self.services.admin.require_enabled)
        if request.path.startswith("/admin/"):
            return early_refusal(request, self.services.admin.check)
        if request.path.startswith(console.PATH):
            return None  # static files, GET only
        return early_refusal(request, self.services.auth.check)

    async def start(
        self, host: str | None = "127.0.0.1", port: int = 0, *, sock=None, reuse_port: bool = False
    ) -> int:
        """Start the gateway and listen; returns the bound port."""
        await self.services.start()
        return await self.server.listen(host, port, sock=sock, reuse_port=reuse_port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests and streams in flight finish, then close everything."""
        if grace is None:
            grace = self.services.config.server.shutdown_grace_s
        await self.server.shutdown(grace)
        await self.services.stop()


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
        write_timeout=server.write_timeout_s,
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
