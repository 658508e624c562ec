"""Services: everything the endpoints use, built once per process from the config and handed
down (by `app.py`, the composition root). Nothing here knows an endpoint or a route.

    config       the validated Config
    auth         gateway tokens (Authenticator)
    router       model name → route of targets; its provider adapters
    health       per-key cooldowns (HealthState); health_sync shares them through Redis
    balancer     the order a route's keys are tried in
    client       the upstream HTTP client; dispatcher: attempts, retries, whole vs stream
    recorder     request records and metrics; `record(ctx)` hands one over
    conversations  the Responses API's stored responses (ConversationStore)
    passthrough  the passthrough relay's config, client and token check
    virtual_keys per-consumer keys (virtualkeys.VirtualKeys), None when not configured
"""

from __future__ import annotations

from apex_ai_proxy.auth import AdminAuth, Authenticator
from apex_ai_proxy.balancer import Balancer
from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.conversations.store import ConversationStore
from apex_ai_proxy.dispatch import Dispatcher
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.health import CooldownTable, HealthState, unit_names
from apex_ai_proxy.http import Request
from apex_ai_proxy.mapping import MAPPING_HEADER, MappingError, map_model, parse_mapping
from apex_ai_proxy.passthrough.service import Passthrough
from apex_ai_proxy.routing import Router
from apex_ai_proxy.telemetry import Recorder, allow_label_values
from apex_ai_proxy.upstream import UpstreamClient


class Services:
    """Everything one process needs to serve requests; built once from the config."""

    def __init__(self, config: Config, health_table: CooldownTable | None = None) -> None:
        self.config = config
        self.max_body = config.server.max_body_bytes
        self.auth = Authenticator(config.gateway_tokens)
        self.admin = AdminAuth(config.admin_tokens, self.auth)
        self.virtual_keys = None
        if config.virtual_keys is not None:
            from apex_ai_proxy.keypool import effective_state
            from apex_ai_proxy.virtualkeys.guard import VirtualKeys

            self.virtual_keys = VirtualKeys(config.virtual_keys, effective_state(config))
            self.auth.accept_virtual(self.virtual_keys)
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
        self.conversations = ConversationStore(
            config.responses_store, self.auth, self.router.adapters
        )
        self.passthrough = Passthrough(config.passthrough, config.gateway_tokens)
        self.ready = False

    async def start(self) -> None:
        await self.client.start()
        await self.recorder.start()
        await self.conversations.start()
        if self.virtual_keys is not None:
            await self.virtual_keys.start()
        if self.health_sync is not None:
            self.health_sync.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.client.close()
        await self.passthrough.close()
        await self.recorder.stop(grace=5.0)
        await self.conversations.close()
        if self.virtual_keys is not None:
            await self.virtual_keys.close()
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

    def release(self, ctx: RequestContext) -> None:
        """A request that ends without a record (an exception after its stream began): settle
        what a virtual key reserved for it."""
        if self.virtual_keys is not None:
            ctx.finish()
            self.virtual_keys.finish(ctx)

    def record(self, ctx: RequestContext) -> None:
        """Hand the finished request to the recorder (never blocks; drops when full)."""
        record = ctx.finish()
        if self.virtual_keys is not None:
            self.virtual_keys.finish(ctx)  # settle its limits, charge its budget
        self.recorder.submit(record)
