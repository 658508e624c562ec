"""SQLite sink: the embedded default. One file, WAL mode, safe for several processes.

Schema (created if missing, by whichever process gets there first):

- `records`: one row per request. The fields the CLI filters and groups on are columns; `data`
  holds the other fields as JSON (query them with SQLite's json functions; rows written before
  this split hold the whole record there). `model` is the mapped model name, falling back to the
  requested one. `telemetry.query` reads a row back as the whole record. Only `ts` and
  `request_id` are indexed: the table is written thousands of times a second and read by people
  now and then, and each index costs every insert (an index per model, provider and status cost
  ~15% of the sink's time, while `logs`/`stats` queries are bounded by time, or newest-first by
  rowid, anyway).
- `raw_records`: the redacted raw capture, by request id, when `records.raw` is on.

Rows are built on the event loop (`prepare`); all I/O runs on the sink's one thread, which owns
the one connection. A write is one transaction holding every batch that waited in the buffer
(up to `COALESCE` records, at most every `MIN_WRITE_INTERVAL_S` while the buffer is not half
full): a commit costs as much as a few hundred rows, and the thread shares the CPU with the
event loop. Rows go in
as multi-row INSERTs of up to `ROWS_PER_INSERT` rows: the sqlite3 module releases and retakes
the GIL around every statement step, and with one busy core each retake waits for the event loop
(a switch interval, or its next system call), so one step per row made the thread crawl and cost
the loop two context switches per row. Retention (`retention_days`, `max_rows`, `max_mb`) is enforced by
`prune()`, which runs every `prune_interval_s`, not per batch. Freed pages are reused by later
inserts; the file itself does not shrink (no VACUUM on a live file).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import sqlite3
import time
from typing import Any

import orjson

from ...sqlite_util import open_wal
from ..config import SqliteSinkConfig
from ..record import RequestRecord
from .base import Batch, ThreadedSink

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    token_name TEXT,
    model TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    mode TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT,
    duration_ms REAL,
    ttft_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_request_id ON records (request_id);
CREATE TABLE IF NOT EXISTS raw_records (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_records_ts ON raw_records (ts);
CREATE INDEX IF NOT EXISTS raw_records_request_id ON raw_records (request_id);
"""

INSERT_RECORD = """
INSERT INTO records (ts, request_id, endpoint, token_name, model, requested_model, provider,
    upstream_model, mode, stream, status, error_type, duration_ms, ttft_ms, prompt_tokens,
    completion_tokens, cost_usd, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_RAW = "INSERT INTO raw_records (ts, request_id, data) VALUES (?, ?, ?)"
RECORD_PLACEHOLDERS = "(" + ", ".join(["?"] * 18) + ")"
ROWS_PER_INSERT = 256
COALESCE = 5000
MIN_WRITE_INTERVAL_S = 0.25
WAL_CHECKPOINT_PAGES = 10_000
# Full disk (or max_page_count), read-only file or folder, no permission: not retried (see
# sinks.base); SQLITE_BUSY and the rest are.
UNWRITABLE_CODES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}
)


def connect(path: str, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open the records database in WAL mode and make sure the schema exists.

    Safe while other processes open or create the same file (see `sqlite_util.open_wal`).
    """
    return open_wal(
        path,
        busy_timeout_ms=busy_timeout_ms,
        schema=SCHEMA,
        pragmas=(
            "synchronous = NORMAL",
            # Checkpoint every ~40 MB of WAL instead of ~4 MB: the hot pages (the end of the
            # table and of each index) are copied into the database once per checkpoint, not
            # once per 4 MB.
            f"wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}",
        ),
    )


# The record fields stored as columns, in INSERT_RECORD order (`model` is derived: the mapped
# model, else the requested one); `data` holds the other fields as JSON.
COLUMN_FIELDS = (
    "ts",
    "request_id",
    "endpoint",
    "token_name",
    "model",
    "requested_model",
    "provider",
    "upstream_model",
    "mode",
    "stream",
    "status",
    "error_type",
    "duration_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)
_COLUMNS = operator.attrgetter(*COLUMN_FIELDS)


def _record_row(record: RequestRecord) -> tuple:
    """The INSERT_RECORD parameters (`stream` is a bool: SQLite stores it as 0/1)."""
    return (*_COLUMNS(record), orjson.dumps(_data(record)).decode())


def _data(record: RequestRecord) -> dict:
    """The fields that have no column. Not repeating the columns halves the JSON to build and
    the bytes to write per record; `telemetry.query` puts the two back together."""
    return {
        "client_dialect": record.client_dialect,
        "mapped_model": record.mapped_model,
        "error_message": record.error_message,
        "attempts": record.attempts,  # dataclasses: orjson writes them as objects
        "ttfb_ms": record.ttfb_ms,
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "dropped_fields": record.dropped_fields,
        "passthrough_type": record.passthrough_type,
        "key_id": record.key_id,
    }


def _raw_row(record: RequestRecord) -> tuple | None:
    """The INSERT_RAW parameters, or None without a raw capture."""
    raw = record.raw_dict()
    return None if raw is None else (record.ts, record.request_id, orjson.dumps(raw).decode())


class SqliteSink(ThreadedSink):
    coalesce = COALESCE
    min_write_interval = MIN_WRITE_INTERVAL_S

    def __init__(self, config: SqliteSinkConfig, name: str = "sqlite") -> None:
        super().__init__(name, buffer_size=config.buffer_size, max_retries=config.max_retries)
        self.config = config
        self.maintenance_interval = config.prune_interval_s
        self._conn: sqlite3.Connection | None = None
        self._rows_per_insert = 1

    async def open(self) -> None:
        await self.in_thread(self._open)

    def prepare(self, batch: Batch) -> list[Any]:
        """The rows, built on the event loop a slice at a time: the sink thread then holds the
        GIL only to bind them, instead of building a whole coalesced write's rows (milliseconds
        of Python) while the event loop waits for the GIL."""
        return [(_record_row(r), _raw_row(r)) for r in batch]

    async def write(self, batch: list[Any]) -> None:
        await self.in_thread(self._insert, batch)

    async def maintain(self) -> None:
        await self.prune()

    async def prune(self, now: float | None = None) -> int:
        """Apply retention now; returns how many records were deleted."""
        return await self.in_thread(self._prune, time.time() if now is None else now)

    async def close(self) -> None:
        await self.in_thread(self._close)

    def retryable(self, exc: Exception) -> bool:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in UNWRITABLE_CODES:
            return False
        return super().retryable(exc)

    # --- on the sink thread -------------------------------------------------------------

    def _open(self) -> None:
        self._conn = connect(self.config.path, self.config.busy_timeout_ms)
        variables = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        fits = max(1, min(ROWS_PER_INSERT, variables // 18))
        self._rows_per_insert = 1 << (fits.bit_length() - 1)

    def _insert(self, batch: list[tuple[tuple, tuple | None]]) -> None:
        records = [row for row, _ in batch]
        raws = [raw for _, raw in batch if raw is not None]
        conn = self._connection()
        per_insert = self._rows_per_insert
        with _transaction(conn):
            start = 0
            while start < len(records):
                # powers of two: a handful of distinct statements in the statement cache
                size = min(per_insert, 1 << ((len(records) - start).bit_length() - 1))
                chunk = records[start : start + size]
                conn.execute(_insert_records_sql(size), list(itertools.chain(*chunk)))
                start += size
            if raws:
                conn.executemany(INSERT_RAW, raws)

    def _prune(self, now: float) -> int:
        conn = self._connection()
        deleted = 0
        with _transaction(conn):
            if self.config.retention_days > 0:
                cutoff = now - self.config.retention_days * 86400
                deleted += conn.execute("DELETE FROM records WHERE ts < ?", (cutoff,)).rowcount
                conn.execute("DELETE FROM raw_records WHERE ts < ?", (cutoff,))
            if self.config.max_rows is not None:
                deleted += self._keep_newest(conn, self.config.max_rows)
        if self.config.max_mb is not None:
            deleted += self._shrink_to(conn, int(self.config.max_mb * 1024 * 1024))
        return deleted

    def _keep_newest(self, conn: sqlite3.Connection, rows: int) -> int:
        """Delete all but the newest `rows` records (and raw captures older than those)."""
        if rows <= 0:
            conn.execute("DELETE FROM raw_records")
            return conn.execute("DELETE FROM records").rowcount
        oldest_kept = conn.execute(
            "SELECT id, ts FROM records ORDER BY id DESC LIMIT 1 OFFSET ?", (rows - 1,)
        ).fetchone()
        if oldest_kept is None:
            return 0
        conn.execute("DELETE FROM raw_records WHERE ts < ?", (oldest_kept[1],))
        return conn.execute("DELETE FROM records WHERE id < ?", (oldest_kept[0],)).rowcount

    def _shrink_to(self, conn: sqlite3.Connection, max_bytes: int) -> int:
        """Delete the oldest tenth of the records until the live pages fit in `max_bytes`."""
        deleted = 0
        while _used_bytes(conn) > max_bytes:
            (total,) = conn.execute("SELECT count(*) FROM records").fetchone()
            if total == 0:
                break
            with _transaction(conn):
                deleted += self._keep_newest(conn, total - max(total // 10, 1))
        return deleted

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@functools.lru_cache(maxsize=16)
def _insert_records_sql(rows: int) -> str:
    """INSERT_RECORD with `rows` rows of placeholders."""
    head = INSERT_RECORD.rpartition("VALUES")[0]
    return f"{head}VALUES {', '.join([RECORD_PLACEHOLDERS] * rows)}"


def _used_bytes(conn: sqlite3.Connection) -> int:
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    return (pages - free) * page_size


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            # SQLite may have rolled back already (SQLITE_FULL can): a failing ROLLBACK must
            # not replace the real error in the log.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
