"""ConversationStore: the process's response store, opened once, read in the token's scope.

Scope: a stored response belongs to the gateway token that created it (its owner fingerprint is
stored, not the token). Another token's GET, DELETE, input_items, cancel or previous_response_id
gets what an unknown id gets (404; 400 for previous_response_id), so it cannot learn the id
exists. Without gateway tokens everything is one scope.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from apex_ai_proxy.errors import BadRequest, NotFound, StoreUnavailable
from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.open_store import open_store
from apex_ai_proxy.state.responses_store import (
    ConversationError,
    Owner,
    ResponseNotFoundError,
    ResponseStore,
    ResponseStoreError,
    ResponseStoreUnavailableError,
    StoredResponse,
)

if TYPE_CHECKING:
    from apex_ai_proxy.auth import Authenticator
    from apex_ai_proxy.context import RequestContext
    from apex_ai_proxy.providers.base import ProviderAdapter

log = logging.getLogger("apex_ai_proxy.responses")

DIALECT = "responses"
STORE_DOWN = (
    "The response store is unavailable; retry later, or send store: false without "
    "previous_response_id for an answer that is not stored."
)


class ConversationStore:
    def __init__(
        self,
        config: ResponsesStoreConfig | None,
        auth: Authenticator,
        adapters: Mapping[str, ProviderAdapter],
    ) -> None:
        # Validated with the rest of the config; absent means the default SQLite file.
        self.configured = config is not None
        self.config = config or ResponsesStoreConfig()
        self.auth = auth
        self.adapters = adapters
        self._store: ResponseStore | None = None
        self._opening = asyncio.Lock()

    async def start(self) -> None:
        """A configured store opens at start-up (and fails it); the default one on first use."""
        if self.configured:
            await self.store()

    @property
    def reachable(self) -> bool:
        """False while the configured store's backend (Redis) is down; for /readyz."""
        return self._store is None or self._store.reachable

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def store(self) -> ResponseStore:
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    try:
                        self._store = await open_store(self.config)
                    except OSError as exc:  # e.g. the SQLite file's folder is not writable
                        raise ResponseStoreUnavailableError(str(exc)) from exc
        return self._store

    async def put(self, record: StoredResponse) -> None:
        await (await self.store()).put(record.id, record)

    def owner_of(self, ctx: RequestContext) -> Owner:
        """Whose stored responses this request may see and stores: its gateway token's owner
        fingerprint, stable when tokens are removed or reordered (None without tokens). Hook
        for admin tokens (a later issue): return EVERY_OWNER for them."""
        return self.auth.owner(ctx.token_name)

    def native(self, provider: str | None) -> bool:
        """Whether `provider` speaks the Responses API itself (and may keep its own state)."""
        adapter = self.adapters.get(provider or "")
        return adapter is not None and adapter.dialect == DIALECT

    async def get(self, response_id: str, owner: Owner) -> StoredResponse:
        try:
            record = await (await self.store()).get_visible(response_id, owner)
        except ResponseStoreError as exc:
            raise store_down(exc) from None
        if record is None:
            raise not_found(response_id)
        return record

    async def delete(self, response_id: str, owner: Owner) -> None:
        try:
            deleted = await (await self.store()).delete_visible(response_id, owner)
        except ResponseStoreError as exc:
            raise store_down(exc) from None
        if not deleted:
            raise not_found(response_id)

    async def conversation(self, previous_id: str, owner: Owner) -> list[StoredResponse]:
        """The chain ending at `previous_id`, oldest first; a 400 when it cannot be rebuilt."""
        try:
            return await (await self.store()).conversation(previous_id, owner=owner)
        except ResponseNotFoundError as exc:
            via = (
                ""
                if exc.response_id == previous_id
                else f" (its ancestor '{exc.response_id}' is gone)"
            )
            raise BadRequest(
                f"Previous response with id '{previous_id}' not found{via}.",
                param="previous_response_id",
                code="previous_response_not_found",
            ) from None
        except ConversationError as exc:
            raise BadRequest(str(exc), param="previous_response_id") from None
        except ResponseStoreError as exc:
            raise store_down(exc) from None


def not_found(response_id: str) -> NotFound:
    """What an unknown id, an expired one and another token's one all get."""
    return NotFound(
        f"Response with id '{response_id}' not found.",
        error_type="invalid_request_error",
        param="response_id",
    )


def store_down(exc: ResponseStoreError) -> StoreUnavailable:
    """The client's 503; the store's address and the driver's words are the operator's (log)."""
    log.warning("response store unavailable: %s", exc)
    return StoreUnavailable(STORE_DOWN)
