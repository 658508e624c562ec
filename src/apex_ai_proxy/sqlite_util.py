"""Opening a SQLite file that other processes may be opening (or creating) at the same moment.

Used by the records sink (telemetry/sinks/sqlite.py) and the response store
(state/sqlite_responses.py): the workers of `serve --workers N`, or several gateways pointed at
one file, all run this on the same path, possibly at once. It lives at the package's top level
because neither of those packages should import the other; it needs only the standard library.

Why a retry: switching a file that is not in WAL mode yet (a new file) to WAL reads the
file's header and then takes the write lock. A connection that read the header while another
process held the write lock gets "database is locked" at once: SQLite does not call the busy
handler when a reader asks for the write lock (waiting there could deadlock), so
`busy_timeout` does not help. Once the file is in WAL mode, opening it takes no write lock. So
`open_wal()` retries that failure with short sleeps until the busy timeout has passed.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY_S = 0.005
MAX_RETRY_DELAY_S = 0.1


def open_wal(
    path: str | Path,
    *,
    busy_timeout_ms: int,
    schema: str,
    pragmas: Iterable[str] = (),
) -> sqlite3.Connection:
    """A connection to `path` in autocommit mode, in WAL mode, with `schema` created.

    `pragmas` (e.g. "synchronous = NORMAL") are run after the switch to WAL, `schema` (a
    script of idempotent statements: CREATE … IF NOT EXISTS) last. "Database is locked" from
    any of these steps is retried, on a new connection, with growing sleeps (5 ms up to
    100 ms, jittered) until `busy_timeout_ms` have passed; then, and for any other error, the
    error is raised.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pragma_list = tuple(pragmas)  # run again on every attempt
    delay = FIRST_RETRY_DELAY_S
    attempt = 1
    while True:
        try:
            conn = _connect(path, busy_timeout_ms, schema, pragma_list)
        except sqlite3.OperationalError as exc:
            pause = delay * random.uniform(0.5, 1.5)  # jittered: the others retry too
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
            log.debug("%s: %s (attempt %d), retrying", path, exc, attempt)
        else:
            if attempt > 1:
                log.debug("%s: opened after %d attempts", path, attempt)
            return conn
        time.sleep(pause)
        delay = min(delay * 2, MAX_RETRY_DELAY_S)
        attempt += 1


def is_busy(exc: sqlite3.Error) -> bool:
    """True for "database is locked" (SQLITE_BUSY and its extended codes) and SQLITE_LOCKED."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _connect(
    path: str | Path, busy_timeout_ms: int, schema: str, pragmas: tuple[str, ...]
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            # e.g. a file system without shared memory: it works, but writes block readers
            log.warning("%s: journal_mode is %s, not wal; writes may block reads", path, mode)
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn
