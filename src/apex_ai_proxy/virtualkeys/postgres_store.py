"""The key store in Postgres, through asyncpg.

Why asyncpg rather than psycopg 3: it is a self-contained wheel (no libpq on the host), async
from the ground up with its own connection pool, and the store needs nothing psycopg adds. The
pool opens on first use; the schema is created then (CREATE … IF NOT EXISTS, idempotent for
every replica starting at once: a unique-violation race on the catalog is retried once).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from apex_ai_proxy.virtualkeys.config import PostgresStoreConfig
from apex_ai_proxy.virtualkeys.model import VirtualKey
from apex_ai_proxy.virtualkeys.store import (
    COLUMNS,
    SAVED_COLUMNS,
    DuplicateName,
    StoreError,
    from_row,
    saved_values,
    to_row,
)

log = logging.getLogger("apex_ai_proxy.virtualkeys")


def schema(p: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}virtual_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, models TEXT, rpm BIGINT,
    tpm BIGINT, rpd BIGINT, max_parallel BIGINT, budget DOUBLE PRECISION,
    budget_period TEXT NOT NULL, expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION,
    metadata TEXT, priority INTEGER, spend_total DOUBLE PRECISION NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL DEFAULT 0)""",
        f"""CREATE TABLE IF NOT EXISTS {p}virtual_key_spend (
    key_id TEXT NOT NULL, day BIGINT NOT NULL, usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (key_id, day))""",
    ]


class PostgresStore:
    def __init__(self, config: PostgresStoreConfig) -> None:
        self.config = config
        p = config.table_prefix
        self._keys, self._spend = f"{p}virtual_keys", f"{p}virtual_key_spend"
        self._pool: Any = None
        self._opening = asyncio.Lock()
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
        self._insert = f"INSERT INTO {self._keys} ({cols}) VALUES ({marks})"
        sets = ", ".join(f"{c} = ${i + 1}" for i, c in enumerate(SAVED_COLUMNS))
        self._update = f"UPDATE {self._keys} SET {sets} WHERE id = ${len(SAVED_COLUMNS) + 1}"
        self._select = f"SELECT {cols} FROM {self._keys}"

    async def _open(self) -> Any:
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.config.dsn,
                    min_size=1,
                    max_size=self.config.pool_size,
                    timeout=self.config.timeout_s,
                    command_timeout=self.config.timeout_s,
                )
                try:
                    await self._create_schema(pool)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def _create_schema(self, pool: Any) -> None:
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    for statement in schema(self.config.table_prefix):
                        await conn.execute(statement)
                return
            except asyncpg.UniqueViolationError:  # two replicas creating the table at once
                if attempt == 2:
                    raise

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        try:
            pool = self._pool or await self._open()
            return await getattr(pool, method)(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateName("a key with this name already exists") from exc
        except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
            log.warning("virtual key store (postgres): %s", type(exc).__name__)
            raise StoreError("the virtual key store (postgres) failed") from None

    async def create(self, key: VirtualKey) -> None:
        await self._call("execute", self._insert, *to_row(key))

    async def save(self, key: VirtualKey) -> None:
        await self._call("execute", self._update, *saved_values(key))

    async def get(self, key_id: str) -> VirtualKey | None:
        row = await self._call("fetchrow", f"{self._select} WHERE id = $1", key_id)
        return None if row is None else from_row(row)

    async def by_name(self, name: str) -> VirtualKey | None:
        row = await self._call("fetchrow", f"{self._select} WHERE name = $1", name)
        return None if row is None else from_row(row)

    async def all(self) -> list[VirtualKey]:
        rows = await self._call("fetch", f"{self._select} ORDER BY name")
        return [from_row(r) for r in rows]

    async def charge(self, charges: list[tuple[str, int, float, int]]) -> None:
        upsert = (
            f"INSERT INTO {self._spend} (key_id, day, usd, requests) VALUES ($1, $2, $3, $4) "
            f"ON CONFLICT (key_id, day) DO UPDATE SET usd = {self._spend}.usd + excluded.usd, "
            f"requests = {self._spend}.requests + excluded.requests"
        )
        total = f"UPDATE {self._keys} SET spend_total = spend_total + $1 WHERE id = $2"
        try:
            pool = self._pool or await self._open()
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(upsert, charges)
                await conn.executemany(total, [(usd, kid) for kid, _, usd, _ in charges])
        except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
            log.warning("virtual key store (postgres): %s", type(exc).__name__)
            raise StoreError("the virtual key store (postgres) failed") from None

    async def spend_rows(self, since_day: int, key_id: str | None = None) -> list[tuple]:
        sql = f"SELECT key_id, day, usd, requests FROM {self._spend} WHERE day >= $1"
        if key_id is None:
            rows = await self._call("fetch", sql + " ORDER BY day", since_day)
        else:
            rows = await self._call(
                "fetch", sql + " AND key_id = $2 ORDER BY day", since_day, key_id
            )
        return [tuple(r) for r in rows]

    async def delete_all(self) -> None:
        await self._call("execute", f"DROP TABLE IF EXISTS {self._keys}, {self._spend}")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
