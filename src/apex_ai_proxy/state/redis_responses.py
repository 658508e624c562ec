"""Redis response store: shared by every replica. One key per response, expiry by Redis (PX)."""

from __future__ import annotations

from typing import Self

from redis.asyncio import Redis
from redis.exceptions import RedisError

from apex_ai_proxy.state.config import redacted_redis_url
from apex_ai_proxy.state.responses_store import (
    ResponseStore,
    ResponseStoreUnavailableError,
    StoredResponse,
    check_record_id,
)

CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0


class RedisResponseStore(ResponseStore):
    def __init__(self, client: Redis, *, url: str, key_prefix: str, ttl_seconds: float) -> None:
        """Use `await RedisResponseStore.open(...)`, which checks the server answers."""
        self._client = client
        self._where = redacted_redis_url(url)
        self._prefix = key_prefix
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, key_prefix: str, ttl_seconds: float) -> Self:
        client = Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
        )
        store = cls(client, url=url, key_prefix=key_prefix, ttl_seconds=ttl_seconds)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ResponseStoreUnavailableError(
                f"no Redis reachable at {store._where}: {exc}"
            ) from exc
        return store

    def key(self, response_id: str) -> str:
        return self._prefix + response_id

    async def put(self, response_id: str, record: StoredResponse) -> None:
        check_record_id(response_id, record)
        data = record.to_json()
        self._check_open()
        try:
            await self._client.set(self.key(response_id), data, px=self._ttl_ms)
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def get(self, response_id: str) -> StoredResponse | None:
        self._check_open()
        try:
            raw = await self._client.get(self.key(response_id))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return None if raw is None else StoredResponse.from_json(raw)

    async def delete(self, response_id: str) -> bool:
        self._check_open()
        try:
            return await self._client.delete(self.key(response_id)) > 0
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ResponseStoreUnavailableError("the response store is closed")

    def _unavailable(self, exc: RedisError) -> ResponseStoreUnavailableError:
        return ResponseStoreUnavailableError(f"Redis at {self._where}: {exc}")
