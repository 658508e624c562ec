"""The key store in a SQLite file (WAL, opened with sqlite_util like the other SQLite files).

Calls run on one connection in one dedicated thread (a sqlite3 connection belongs to the
thread that opened it): the gateway touches the store only from its refresh loop, the spend
flush and the admin API, never per request, so one connection is plenty.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from apex_ai_proxy.sqlite_util import open_wal
from apex_ai_proxy.virtualkeys.config import SqliteStoreConfig
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
T = TypeVar("T")


def schema(p: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {p}virtual_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at REAL NOT NULL, models TEXT, rpm INTEGER, tpm INTEGER,
    rpd INTEGER, max_parallel INTEGER, budget REAL, budget_period TEXT NOT NULL,
    expires_at REAL, revoked_at REAL, metadata TEXT, priority INTEGER,
    spend_total REAL NOT NULL DEFAULT 0, updated_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {p}virtual_key_spend (
    key_id TEXT NOT NULL, day INTEGER NOT NULL, usd REAL NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (key_id, day)
);
"""


class SqliteStore:
    def __init__(self, config: SqliteStoreConfig) -> None:
        self.config = config
        p = config.table_prefix
        self._keys, self._spend = f"{p}virtual_keys", f"{p}virtual_key_spend"
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="apex-keys-sqlite")
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        self._insert = f"INSERT INTO {self._keys} ({cols}) VALUES ({marks})"
        sets = ", ".join(f"{c} = ?" for c in SAVED_COLUMNS)
        self._update = f"UPDATE {self._keys} SET {sets} WHERE id = ?"
        self._select = f"SELECT {cols} FROM {self._keys}"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_wal(
                self.config.path,
                busy_timeout_ms=self.config.busy_timeout_ms,
                schema=schema(self.config.table_prefix),
                pragmas=("synchronous = NORMAL",),
            )
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            return work(self._connection())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.IntegrityError as exc:
            raise DuplicateName("a key with this name already exists") from exc
        except sqlite3.Error as exc:
            log.warning("virtual key store (sqlite): %s", exc)
            raise StoreError("the virtual key store (sqlite) failed") from None

    async def create(self, key: VirtualKey) -> None:
        await self._run(lambda c: c.execute(self._insert, to_row(key)))

    async def save(self, key: VirtualKey) -> None:
        values = saved_values(key)
        await self._run(lambda c: c.execute(self._update, values))

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one(f"{self._select} WHERE id = ?", key_id)

    async def by_name(self, name: str) -> VirtualKey | None:
        return await self._one(f"{self._select} WHERE name = ?", name)

    async def _one(self, sql: str, arg: str) -> VirtualKey | None:
        row = await self._run(lambda c: c.execute(sql, (arg,)).fetchone())
        return None if row is None else from_row(row)

    async def all(self) -> list[VirtualKey]:
        rows = await self._run(lambda c: c.execute(f"{self._select} ORDER BY name").fetchall())
        return [from_row(r) for r in rows]

    async def charge(self, charges: list[tuple[str, int, float, int]]) -> None:
        upsert = (
            f"INSERT INTO {self._spend} (key_id, day, usd, requests) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key_id, day) DO UPDATE SET usd = usd + excluded.usd, "
            "requests = requests + excluded.requests"
        )
        total = f"UPDATE {self._keys} SET spend_total = spend_total + ? WHERE id = ?"

        def work(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(upsert, charges)
                c.executemany(total, [(usd, key_id) for key_id, _, usd, _ in charges])
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

        await self._run(work)

    async def spend_rows(self, since_day: int, key_id: str | None = None) -> list[tuple]:
        sql = f"SELECT key_id, day, usd, requests FROM {self._spend} WHERE day >= ?"
        args: tuple = (since_day,)
        if key_id is not None:
            sql, args = sql + " AND key_id = ?", (since_day, key_id)
        return await self._run(lambda c: c.execute(sql + " ORDER BY day", args).fetchall())

    async def delete_all(self) -> None:
        def work(c: sqlite3.Connection) -> None:
            c.execute(f"DROP TABLE IF EXISTS {self._keys}")
            c.execute(f"DROP TABLE IF EXISTS {self._spend}")

        await self._run(work)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=False)
