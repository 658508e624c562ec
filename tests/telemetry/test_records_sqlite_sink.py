from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson
from records_helpers import build_record

from apex_ai_proxy.telemetry import RawRecord, SqliteSinkConfig
from apex_ai_proxy.telemetry.query import recent_records
from apex_ai_proxy.telemetry.sinks import SqliteSink


async def write(sink: SqliteSink, *batches: list) -> None:
    await sink.start()
    for batch in batches:
        sink.offer(batch)
    await sink.stop(grace=5)


def rows(
    path: Path,
    sql: str = "SELECT request_id, model, provider, status, data FROM records ORDER BY id",
) -> list:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def stored_records(path: Path) -> list[dict]:
    """Every record as `telemetry.query` reads it back, oldest first, without the row id."""
    records = recent_records(path, limit=100_000)
    return [{k: v for k, v in r.items() if k != "id"} for r in reversed(records)]


async def test_data_holds_only_the_fields_without_a_column(tmp_path: Path) -> None:
    record = build_record(request_id="lean", mapped_model="gpt-4o-mini", bytes_out=123)
    await write(SqliteSink(SqliteSinkConfig(path=str(tmp_path / "r.db"))), [record])
    ((data,),) = rows(tmp_path / "r.db", "SELECT data FROM records")
    stored = orjson.loads(data)
    assert stored["mapped_model"] == "gpt-4o-mini" and stored["bytes_out"] == 123
    assert stored["attempts"] == [a.to_dict() for a in record.attempts]
    assert not {"request_id", "status", "provider", "ts"} & stored.keys()


async def test_rows_written_with_the_whole_record_in_data_still_read_back(
    tmp_path: Path,
) -> None:
    """Files written before data held only the fields without a column."""
    record = build_record(request_id="old-row")
    await write(SqliteSink(SqliteSinkConfig(path=str(tmp_path / "r.db"))), [record])
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("UPDATE records SET data = ?", (orjson.dumps(record.to_dict()).decode(),))
    assert stored_records(tmp_path / "r.db") == [record.to_dict()]


async def test_batches_land_in_columns_and_read_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    sink = SqliteSink(SqliteSinkConfig(path=str(path)))
    first = build_record(request_id="r1", requested_model="fast", mapped_model="gpt-4o-mini")
    second = build_record(request_id="r2", status=429, error_type="rate_limited")
    await write(sink, [first], [second])

    stored = rows(path)
    assert [r[:4] for r in stored] == [
        ("r1", "gpt-4o-mini", "openai", 200),
        ("r2", "gpt-4o", "openai", 429),
    ]
    assert stored_records(path)[0] == first.to_dict()  # columns + data: the whole record
    assert sink.written == 2 and sink.dropped == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"records_ts", "records_request_id"} <= indexes


async def test_raw_capture_goes_to_raw_records(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    record = build_record(request_id="raw-1", raw=RawRecord({"a": "b"}, "req", {"c": "d"}, "resp"))
    await write(SqliteSink(SqliteSinkConfig(path=str(path))), [record, build_record()])
    (raw,) = rows(path, "SELECT request_id, data FROM raw_records")
    assert raw[0] == "raw-1"
    assert orjson.loads(raw[1])["response_body"] == "resp"
    assert "raw" not in orjson.loads(rows(path)[0][4])


async def test_retention_deletes_records_older_than_retention_days(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    now = time.time()
    sink = SqliteSink(SqliteSinkConfig(path=str(path), retention_days=1))
    await sink.start()
    sink.offer(
        [
            build_record(request_id="old", ts=now - 2 * 86400, raw=RawRecord(None, "x", None, "y")),
            build_record(request_id="new", ts=now - 3600, raw=RawRecord(None, "x", None, "y")),
        ]
    )
    while sink.buffered:
        await asyncio.sleep(0.01)
    assert await sink.prune(now=now) == 1
    await sink.stop()
    assert [r[0] for r in rows(path)] == ["new"]
    assert rows(path, "SELECT request_id FROM raw_records") == [("new",)]


async def test_max_rows_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    sink = SqliteSink(SqliteSinkConfig(path=str(path), retention_days=0, max_rows=3))
    await sink.start()
    sink.offer([build_record(request_id=f"r{i}", ts=1.0) for i in range(10)])  # ancient but kept
    while sink.buffered:
        await asyncio.sleep(0.01)
    assert await sink.prune() == 7
    await sink.stop()
    assert [r[0] for r in rows(path)] == ["r7", "r8", "r9"]


async def test_max_mb_deletes_oldest_until_it_fits(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    sink = SqliteSink(SqliteSinkConfig(path=str(path), retention_days=0, max_mb=0.25))
    await sink.start()
    sink.offer([build_record(request_id=f"r{i}", error_message="e" * 2000) for i in range(300)])
    while sink.buffered:
        await asyncio.sleep(0.01)
    deleted = await sink.prune()
    await sink.stop()
    remaining = [r[0] for r in rows(path)]
    assert deleted > 0 and len(remaining) == 300 - deleted
    assert remaining[-1] == "r299"  # the newest survive
    with sqlite3.connect(path) as conn:
        page_size, pages, free = (
            conn.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_size", "page_count", "freelist_count")
        )
    assert (pages - free) * page_size <= 0.25 * 1024 * 1024


async def test_two_writers_on_the_same_file_lose_nothing(tmp_path: Path) -> None:
    """Two connections (as two worker processes would have) writing concurrently: WAL and
    busy_timeout serialise them instead of failing with 'database is locked'."""
    path = tmp_path / "records.db"
    sinks = [SqliteSink(SqliteSinkConfig(path=str(path)), name=f"w{i}") for i in range(2)]
    for sink in sinks:
        await sink.start()
    for n in range(20):
        for i, sink in enumerate(sinks):
            sink.offer([build_record(request_id=f"w{i}-{n}-{k}") for k in range(25)])
    await asyncio.gather(*(sink.stop(grace=10) for sink in sinks))
    assert [s.dropped for s in sinks] == [0, 0]
    assert len(rows(path)) == 2 * 20 * 25


async def test_retention_is_applied_when_the_sink_starts(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    keep_all = SqliteSink(SqliteSinkConfig(path=str(path), retention_days=0))
    await write(keep_all, [build_record(request_id="stale", ts=time.time() - 30 * 86400)])
    assert len(rows(path)) == 1
    sink = SqliteSink(SqliteSinkConfig(path=str(path), retention_days=7))
    await sink.start()  # no batch, no explicit prune: only the start-up maintenance runs
    async with asyncio.timeout(5):
        while rows(path):
            await asyncio.sleep(0.01)
    await sink.stop()


async def test_batches_waiting_in_the_buffer_are_written_in_one_transaction(
    tmp_path: Path,
) -> None:
    sink = SqliteSink(SqliteSinkConfig(path=str(tmp_path / "r.db")))
    writes: list[int] = []
    insert = sink._insert
    sink._insert = lambda batch: (writes.append(len(batch)), insert(batch))[1]  # type: ignore[method-assign]
    await sink.start()
    sink.offer([build_record()])  # written at once: nothing was written before
    async with asyncio.timeout(5):
        while sink.buffered:
            await asyncio.sleep(0.005)
    for _ in range(10):  # within MIN_WRITE_INTERVAL_S of that write: these wait and merge
        sink.offer([build_record(), build_record()])
    await sink.stop(grace=5)
    assert writes == [1, 20]
    assert sink.written == 21
    assert len(rows(tmp_path / "r.db", "SELECT id FROM records")) == 21


async def test_a_write_larger_than_one_insert_statement_keeps_every_row_in_order(
    tmp_path: Path,
) -> None:
    batch = [build_record(request_id=f"bulk-{i}", status=200 + i % 3) for i in range(600)]
    sink = SqliteSink(SqliteSinkConfig(path=str(tmp_path / "r.db")))
    await write(sink, batch)  # 256 + 256 + 88 rows
    stored = rows(tmp_path / "r.db", "SELECT request_id, status, data FROM records ORDER BY id")
    assert [(r[0], r[1]) for r in stored] == [(r.request_id, r.status) for r in batch]
    assert stored_records(tmp_path / "r.db")[-1] == batch[-1].to_dict()
