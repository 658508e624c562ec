"""Several processes opening one new SQLite file at the same moment (the records sink and the
responses store, as `serve --workers N` or several gateways sharing a file do).

Switching a new file to WAL takes the write lock after a read of the file's header; a process
that read the header while another held the write lock gets "database is locked" at once
(SQLite does not call the busy handler there: waiting could deadlock). Opening must wait that
out instead of failing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apex_ai_proxy.sqlite_util import open_wal
from apex_ai_proxy.state.responses_store import StoredResponse
from apex_ai_proxy.state.sqlite_responses import SQLiteResponseStore
from apex_ai_proxy.telemetry.sinks.sqlite import connect

FORK = multiprocessing.get_context("fork")
ROUNDS = 60
PROCESSES = 4


def open_records(path: Path) -> None:
    conn = connect(str(path))
    try:
        conn.execute("INSERT INTO raw_records (ts, request_id, data) VALUES (1, 'r', '{}')")
    finally:
        conn.close()


def open_responses(path: Path) -> None:
    async def run() -> None:
        store = await SQLiteResponseStore.open(path, ttl_seconds=60, prune_interval_seconds=60)
        try:
            record = StoredResponse(
                id="resp_1",
                created_at=1,
                model="m",
                input_items=[],
                instructions=None,
                response={"id": "resp_1"},
                output_items=[],
            )
            await store.put("resp_1", record)
        finally:
            await store.close()

    asyncio.run(run())


OPENERS = {"records": open_records, "responses": open_responses}


def _child(opener: Callable[[Path], None], paths: list[Path], start: Any, results: Any) -> None:
    outcomes = []
    for path in paths:
        try:
            start.wait(10)
            opener(path)
        except BaseException as exc:  # reported to the parent, which fails the test
            outcomes.append(f"{path.name}: {type(exc).__name__}: {exc}")
        else:
            outcomes.append("ok")
    results.put(outcomes)


def _run_together(opener: Callable[[Path], None], paths: list[Path], processes: int) -> list[str]:
    """`processes` processes open each of `paths` at once, one path after another; what each
    attempt came to. The processes are forked once and meet at a barrier before each path:
    warm processes start within microseconds of each other, a fresh fork per round does not."""
    start = FORK.Barrier(processes)
    results = FORK.Queue()
    procs = [
        FORK.Process(target=_child, args=(opener, paths, start, results)) for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        return [outcome for _ in procs for outcome in results.get(timeout=60)]
    finally:
        for proc in procs:
            proc.join(10)


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_processes_opening_a_new_file_at_once_all_succeed(kind: str, tmp_path: Path) -> None:
    paths = [tmp_path / f"{kind}-{round_}.db" for round_ in range(ROUNDS)]
    outcomes = _run_together(OPENERS[kind], paths, PROCESSES)
    assert [o for o in outcomes if o != "ok"] == []
    assert len(outcomes) == ROUNDS * PROCESSES
    assert {_journal_mode(path) for path in paths} == {"wal"}


def _hold_write_lock(path: Path, locked: Any, seconds: float) -> None:
    """Hold the write lock of a new, not yet WAL file: another process switching it to WAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_opening_waits_while_another_process_holds_a_new_files_write_lock(
    kind: str, tmp_path: Path
) -> None:
    # The race above, made certain: the openers read the header while the lock is held.
    path = tmp_path / f"{kind}.db"
    locked = FORK.Event()
    holder = FORK.Process(target=_hold_write_lock, args=(path, locked, 0.3))
    holder.start()
    try:
        assert locked.wait(10)
        assert _run_together(OPENERS[kind], [path], 2) == ["ok", "ok"]
    finally:
        holder.join(10)
    assert _journal_mode(path) == "wal"


def test_open_wal_gives_up_when_the_busy_timeout_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            open_wal(path, busy_timeout_ms=300, schema="CREATE TABLE IF NOT EXISTS t (x)")
        assert 0.1 < time.monotonic() - started < 2  # retried, then stopped
    finally:
        holder.close()


def test_open_wal_does_not_retry_other_errors(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="syntax"):
        open_wal(tmp_path / "bad.db", busy_timeout_ms=5000, schema="CREATE TABLE (")
    assert time.monotonic() - started < 1
