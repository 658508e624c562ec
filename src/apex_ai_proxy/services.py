"""Services: everything the endpoints use, built from the config and handed down (by `app.py`,
the composition root); built again on a config reload (reload.py), taking over the parts that
live as long as the process. Nothing here knows an endpoint or a route.

    config       the validated Config
    auth         gateway tokens (Authenticator)
    router       model name → route of targets; its provider adapters
    health       per-key cooldowns (HealthState); health_sync shares them through Redis
    pool         the key pool (quotas per key × model) on `ledger`, kept whole across reloads
    balancer     the order a route's keys are tried in
    client       the upstream HTTP client; dispatcher: attempts, retries, whole vs stream
    recorder     request records and metrics; `record(ctx)` hands one over
    conversations  the Responses API's stored responses (ConversationStore)
    passthrough  the passthrough relay's config, client and token check
    virtual_keys per-consumer keys (virtualkeys.VirtualKeys), None when not configured
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from apex_ai_proxy.auth import AdminAuth, Authenticator
from apex_ai_proxy.config import Config
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.conversations.store import ConversationStore
from apex_ai_proxy.dispatch import Dispatcher
from apex_ai_proxy.dispatch.pool import KeyPool, open_pool_ledger  # key pool (issue 13)
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.health import (
    CooldownTable,
    HealthState,
    effective_health,
    endpoint_names,
    same_units,
    table_names,
)
from apex_ai_proxy.http import Request
from apex_ai_proxy.passthrough.service import Passthrough
from apex_ai_proxy.routing import Router
from apex_ai_proxy.routing.balancer import Balancer
from apex_ai_proxy.routing.mapping import MAPPING_HEADER, MappingError, map_model, parse_mapping
from apex_ai_proxy.telemetry import Recorder, allow_label_values
from apex_ai_proxy.upstream import UpstreamClient

if TYPE_CHECKING:
    from apex_ai_proxy.reload import ReloadChanges


class Services:
    """Everything one process needs to serve requests; built from the config (again on a
    reload: `previous=`, then `carry_over`)."""

    def __init__(
        self,
        config: Config,
        health_table: CooldownTable | None = None,
        *,
        previous: Services | None = None,
    ) -> None:
        """`previous`: the Services a config reload replaces (reload.py). What lives as long as
        the process — connections, records, stored responses, passthrough, the cooldown table
        and its Redis sync — is taken over from it; the routing state is built anew."""
        self.config = config
        self.max_body = config.server.max_body_bytes
        self.auth = Authenticator(config.gateway_tokens)
        self.admin = AdminAuth(config.admin_tokens, self.auth)
        self.router = Router(config)
        allow_label_values(self.router.model_names(), self.router.adapters)  # metrics labels
        retry = config.retry
        if previous is not None:
            health_table = previous.health.table
        elif health_table is None:  # else the launcher shares `health_table` between workers
            health_table = CooldownTable(table_names(self.router))
        self.health = HealthState(
            retry.cooldown_base_s,
            retry.cooldown_max_s,
            retry.auth_failure_cooldown_s,
            health_table,
            key_faults=retry.key_faults,
            endpoint_faults=retry.endpoint_faults,
        )
        self.balancer = Balancer(self.health)
        if previous is None:
            self._build_lasting(config)
        else:
            self._take_over(previous)
        # key pool (issue 13): built anew on a reload, on the ledger kept whole
        self.pool = KeyPool(self.ledger, self.router, config, self.health)
        if self.virtual_keys is not None:  # the new Authenticator accepts them too
            self.auth.accept_virtual(self.virtual_keys)
        self.dispatcher = Dispatcher(
            self.client,
            self.health,
            self.balancer,
            retry,
            scrub=self.recorder.redactor.scrub,
            pool=self.pool,  # key pool (issue 13)
        )
        #: Applies the config file again (set by the App: POST /admin/reload calls it).
        self.reload: Callable[[], ReloadChanges] | None = None

    def _build_lasting(self, config: Config) -> None:
        self.health_sync = None
        health = effective_health(config)
        if health.backend == "redis":  # cooldowns shared with other replicas too
            from apex_ai_proxy.health.redis_sync import RedisHealthSync

            self.health_sync = RedisHealthSync(self.health, health)
        records = config.records
        self._secrets = set(config.secrets())
        self.recorder = Recorder(records, secrets=self._secrets)
        self.capture_raw = records.enabled and records.raw
        self.client = UpstreamClient()
        self.ledger = open_pool_ledger(config)  # key pool (issue 13): closed in stop()
        self.conversations = ConversationStore(
            config.responses_store, self.auth, self.router.adapters
        )
        self.passthrough = Passthrough(config.passthrough, config.gateway_tokens)
        self.virtual_keys = None
        if config.virtual_keys is not None:  # their limits: on the pool's ledger, one for both
            from apex_ai_proxy.virtualkeys.guard import VirtualKeys

            self.virtual_keys = VirtualKeys(config.virtual_keys, self.ledger)
        self.ready = False

    def _take_over(self, previous: Services) -> None:
        """The lasting parts of `previous`, shared as they are; `carry_over` tells them about
        the new config when the reload is applied (not before: a reload may still fail)."""
        self.health_sync = previous.health_sync
        self.recorder = previous.recorder
        self._secrets = previous._secrets | set(self.config.secrets())
        self.capture_raw = previous.capture_raw
        self.client = previous.client
        self.conversations = previous.conversations
        self.passthrough = previous.passthrough
        # State kept whole across a reload goes here too, one line each.
        self.ledger = previous.ledger  # key pool (issue 13): counts and learned states
        # The key store, its cache and the limits' ledger live as long as the process: a
        # reload keeps them (a changed `virtual_keys:` section needs a restart).
        self.virtual_keys = previous.virtual_keys
        self.ready = previous.ready

    def carry_over(self, previous: Services) -> list[str]:
        """Applying a reload: the state kept from the Services this one replaces, one line per
        stateful component, and the lasting parts told about the new tokens, keys, adapters.
        Returns the units whose cooldowns are not shared between workers (HealthState)."""
        same = same_units(previous.router, self.router)
        unshared = self.health.carry_over(previous.health, same, endpoint_names(self.router))
        if self.health_sync is not None:
            self.health_sync.follow(self.health)
        # Old secrets stay redacted too: requests in flight on the old config still use them.
        self.recorder.set_secrets(self._secrets)
        self.conversations.auth = self.auth
        self.conversations.adapters = self.router.adapters
        self.passthrough.set_gateway_tokens(self.config.gateway_tokens)
        self.pool.take_over(previous.pool)  # key pool (issue 13): what this process learned
        return unshared

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
        await self.pool.close()  # key pool (issue 13): pending settlements, then the ledger

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
