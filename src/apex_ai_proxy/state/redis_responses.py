"""Redis response store: shared by every replica. One key per response, expiry by Redis (PX).

Redis down, at start-up or later: the store still opens (chat needs no Redis), says so once in
the log, and reconnects in the background with backoff. Meanwhile every call fails at once
with ResponseStoreUnavailableError (a 503 to the client), instead of each request waiting out
its own connect attempt; `reachable` tells /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Self

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apex_ai_proxy.state.config import redacted_redis_url
from apex_ai_proxy.state.redis_client import Backoff, redis_client
from apex_ai_proxy.state.responses_store import (
    ResponseStore,
    ResponseStoreUnavailableError,
    StoredResponse,
    check_record_id,
)

log = logging.getLogger("apex_ai_proxy")

# Errors that mean "Redis is not there" (as opposed to a refused command): they start the
# background reconnect. OSError: a socket error redis-py did not wrap.
_OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisResponseStore(ResponseStore):
    def __init__(self, client: Redis, *, url: str, key_prefix: str, ttl_seconds: float) -> None:
        """Use `await RedisResponseStore.open(...)`, which checks whether the server answers."""
        self._client = client
        self._where = redacted_redis_url(url)
        self._prefix = key_prefix
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._closed = False
        self._outage: str | None = None  # why Redis is taken as down; None while it answers
        self._reconnect: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, *, key_prefix: str, ttl_seconds: float) -> Self:
        """Opens even when Redis does not answer: then it reconnects in the background."""
        store = cls(redis_client(url), url=url, key_prefix=key_prefix, ttl_seconds=ttl_seconds)
        try:
            await store._client.ping()
        except (RedisError, OSError) as exc:
            store._went_down(exc)
        return store

    @property
    def reachable(self) -> bool:
        return self._outage is None

    def key(self, response_id: str) -> str:
        return self._prefix + response_id

    async def put(self, response_id: str, record: StoredResponse) -> None:
        check_record_id(response_id, record)
        data = record.to_json()
        self._check_usable()
        try:
            await self._client.set(self.key(response_id), data, px=self._ttl_ms)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def get(self, response_id: str) -> StoredResponse | None:
        self._check_usable()
        try:
            raw = await self._client.get(self.key(response_id))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return None if raw is None else StoredResponse.from_json(raw)

    async def delete(self, response_id: str) -> bool:
        self._check_usable()
        try:
            return await self._client.delete(self.key(response_id)) > 0
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        await self._client.aclose()

    def _check_usable(self) -> None:
        if self._closed:
            raise ResponseStoreUnavailableError("the response store is closed")
        if self._outage is not None:
            raise ResponseStoreUnavailableError(
                f"Redis at {self._where} is unreachable ({self._outage}); "
                "the gateway is reconnecting in the background"
            )

    def _unavailable(self, exc: BaseException) -> ResponseStoreUnavailableError:
        if isinstance(exc, _OUTAGE):
            self._went_down(exc)
        return ResponseStoreUnavailableError(f"Redis at {self._where}: {exc}")

    # --- outage: one log line, then a background reconnect with backoff ------------------------

    def _went_down(self, exc: BaseException) -> None:
        if self._outage is not None or self._closed:
            return
        self._outage = str(exc) or type(exc).__name__
        log.warning(
            "responses store: Redis at %s is not answering (%s); /v1/responses calls that need "
            "the store answer 503 until it does; reconnecting in the background",
            self._where,
            self._outage,
        )
        self._reconnect = asyncio.create_task(self._reconnect_forever(), name="responses-redis")

    async def _reconnect_forever(self) -> None:
        backoff = Backoff()
        while True:
            await asyncio.sleep(backoff.next())
            try:
                await self._client.ping()
            except (RedisError, OSError):
                continue
            self._outage = None
            self._reconnect = None
            log.info("responses store: Redis at %s answers again", self._where)
            return
