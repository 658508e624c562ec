"""SQLite response store: the embedded default, one file shared by every worker process.

All SQLite work runs on one dedicated thread that owns the only connection, so the event loop
never waits on disk and the connection is never shared between threads. WAL lets readers and
the writer of several processes work at once; busy_timeout makes a process wait for another's
write lock instead of failing. Expired rows are filtered out by every read and deleted in small
batches at most once per prune interval, on the same thread, after a put.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

from apex_ai_proxy.sqlite_util import open_wal
from apex_ai_proxy.state.responses_store import (
    ResponseStore,
    ResponseStoreError,
    ResponseStoreUnavailableError,
    StoredResponse,
    check_record_id,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
PRUNE_BATCH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expires_at ON responses (expires_at);
"""
_UPSERT = (
    "INSERT INTO responses (id, expires_at, data) VALUES (?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data"
)
_SELECT = "SELECT data FROM responses WHERE id = ? AND expires_at > ?"
_DELETE = "DELETE FROM responses WHERE id = ? AND expires_at > ?"
_PRUNE = (
    "DELETE FROM responses WHERE rowid IN "
    "(SELECT rowid FROM responses WHERE expires_at <= ? LIMIT ?)"
)


class SQLiteResponseStore(ResponseStore):
    def __init__(
        self,
        path: Path | str,
        *,
        ttl_seconds: float,
        prune_interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use `await SQLiteResponseStore.open(...)`; the constructor does no I/O."""
        self.path = Path(path)
        self._ttl = ttl_seconds
        self._prune_interval = prune_interval_seconds
        self._clock = clock
        self._next_prune_at = 0.0  # the first put after start prunes what expired while down
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apex-responses")

    @classmethod
    async def open(
        cls, path: Path | str, *, ttl_seconds: float, prune_interval_seconds: float
    ) -> Self:
        store = cls(path, ttl_seconds=ttl_seconds, prune_interval_seconds=prune_interval_seconds)
        try:
            await store._run(store._open_sync)
        except BaseException:
            store._closed = True
            store._executor.shutdown(wait=False)
            raise
        return store

    async def put(self, response_id: str, record: StoredResponse) -> None:
        check_record_id(response_id, record)
        data = record.to_json()
        now = self._clock()
        await self._run(self._execute, _UPSERT, (response_id, now + self._ttl, data))
        if now >= self._next_prune_at:
            self._next_prune_at = now + self._prune_interval
            self._submit_prune_batch(now)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(self._fetch_one, _SELECT, (response_id, self._clock()))
        return None if row is None else StoredResponse.from_json(row[0])

    async def delete(self, response_id: str) -> bool:
        deleted = await self._run(self._execute, _DELETE, (response_id, self._clock()))
        return deleted > 0

    async def prune(self) -> int:
        """Delete every expired row now; returns how many. Each batch is its own transaction."""
        now = self._clock()
        total = 0
        while True:
            deleted = await self._run(self._execute, _PRUNE, (now, PRUNE_BATCH))
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._run(self._close_sync)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- everything below runs on the store's own thread, except _run and _submit_prune_batch

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ResponseStoreUnavailableError("the response store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk full, I/O error
            raise ResponseStoreUnavailableError(f"response store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise ResponseStoreError(f"response store {self.path}: {exc}") from exc

    def _submit_prune_batch(self, now: float) -> None:
        # Fire and forget: the put that triggered it does not wait. Each batch is a separate
        # job, so requests queued meanwhile run between batches.
        with contextlib.suppress(RuntimeError):  # executor already shut down by close()
            self._executor.submit(self._prune_batch_sync, now)

    def _prune_batch_sync(self, now: float) -> None:
        if self._conn is None:
            return
        try:
            deleted = self._execute(_PRUNE, (now, PRUNE_BATCH))
        except sqlite3.Error as exc:
            log.warning("pruning expired responses in %s failed: %s", self.path, exc)
            return
        if deleted == PRUNE_BATCH:
            self._submit_prune_batch(now)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Other workers may be opening (creating) the same file right now: open_wal waits
        # that out. WAL + NORMAL: safe across process crashes; a power cut may lose the last
        # commits.
        self._conn = open_wal(
            self.path,
            busy_timeout_ms=BUSY_TIMEOUT_MS,
            schema=_SCHEMA,
            pragmas=("synchronous = NORMAL",),
        )

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ResponseStoreUnavailableError("the response store is closed")
        return self._conn

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._connection().execute(sql, params).rowcount

    def _fetch_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._connection().execute(sql, params).fetchone()
