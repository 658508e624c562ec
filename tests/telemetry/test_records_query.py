from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from records_helpers import build_record

from apex_ai_proxy.telemetry import SqliteSinkConfig
from apex_ai_proxy.telemetry.query import (
    follow_records,
    format_records_table,
    format_stats_table,
    parse_since,
    recent_records,
    stats,
)
from apex_ai_proxy.telemetry.sinks import SqliteSink

NOW = time.time()


async def write_db(path: Path, records: list) -> None:
    sink = SqliteSink(SqliteSinkConfig(path=str(path)))
    await sink.start()
    sink.offer(records)
    await sink.stop()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "odd name #1?.db"  # characters that need escaping in a sqlite URI
    records = []
    # gpt-4o on openai: 20 requests, durations 10..200 ms, two errors
    for i in range(20):
        status = 500 if i in (3, 7) else 200
        records.append(
            build_record(
                request_id=f"o{i}", ts=NOW - 60 + i, duration_ms=float((i + 1) * 10), status=status,
                prompt_tokens=10, completion_tokens=5, cost_usd=0.5,
            )
        )  # fmt: skip
    # claude on anthropic, an hour ago-ish: 4 requests, one 429
    for i in range(4):
        records.append(
            build_record(
                request_id=f"a{i}", ts=NOW - 7200 + i, requested_model="sonnet", mapped_model="claude",
                provider="anthropic", status=429 if i == 0 else 200, duration_ms=1000.0 + i,
                prompt_tokens=None, completion_tokens=None, cost_usd=None,
            )
        )  # fmt: skip
    records.sort(key=lambda r: r.ts)
    await write_db(path, records)
    return path


def test_recent_records_filters_and_orders_newest_first(db: Path) -> None:
    assert [r["request_id"] for r in recent_records(db, limit=3)] == ["o19", "o18", "o17"]
    assert [r["request_id"] for r in recent_records(db, provider="anthropic")] == [
        "a3",
        "a2",
        "a1",
        "a0",
    ]
    assert [r["request_id"] for r in recent_records(db, model="sonnet", limit=1)] == [
        "a3"
    ]  # requested name
    assert [r["request_id"] for r in recent_records(db, model="claude", limit=1)] == [
        "a3"
    ]  # mapped name
    assert [r["request_id"] for r in recent_records(db, status=500)] == ["o7", "o3"]
    assert [r["request_id"] for r in recent_records(db, status="4xx")] == ["a0"]
    assert [r["request_id"] for r in recent_records(db, status="error")] == ["o7", "o3", "a0"]
    assert {r["request_id"] for r in recent_records(db, since="30m")} == {
        f"o{i}" for i in range(20)
    }
    assert recent_records(db, since=NOW + 10) == []


def test_stats_per_model_and_provider(db: Path) -> None:
    openai_row, anthropic_row = stats(db)
    assert (openai_row.model, openai_row.provider, openai_row.requests, openai_row.errors) == (
        "gpt-4o", "openai", 20, 2,
    )  # fmt: skip
    assert openai_row.error_rate == pytest.approx(0.1)
    assert (openai_row.p50_ms, openai_row.p95_ms) == (100.0, 190.0)  # nearest rank of 10..200
    assert (openai_row.prompt_tokens, openai_row.completion_tokens) == (200, 100)
    assert openai_row.cost_usd == pytest.approx(10.0)
    assert (anthropic_row.model, anthropic_row.requests, anthropic_row.errors) == ("claude", 4, 1)
    assert (anthropic_row.prompt_tokens, anthropic_row.cost_usd) == (0, 0.0)
    assert [row.model for row in stats(db, since="30m")] == ["gpt-4o"]


def test_tables_are_fixed_width_and_readable(db: Path) -> None:
    table = format_records_table(recent_records(db, status="error"))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["TIME", "STATUS", "MODEL"]
    assert len(lines) == 4
    assert "a0" in lines[3] and "429" in lines[3] and "anthropic" in lines[3]
    status_column = lines[0].index("STATUS")
    assert {line[status_column : status_column + 6].strip() for line in lines[1:]} == {"500", "429"}

    table = format_stats_table(stats(db))
    header, first, second = table.splitlines()
    assert header.split() == [
        "MODEL",
        "PROVIDER",
        "REQUESTS",
        "ERR%",
        "P50",
        "P95",
        "IN",
        "TOK",
        "OUT",
        "TOK",
        "COST",
    ]
    assert first.split() == [
        "gpt-4o",
        "openai",
        "20",
        "10.0",
        "100ms",
        "190ms",
        "200",
        "100",
        "$10.0000",
    ]
    assert second.split()[:6] == ["claude", "anthropic", "4", "25.0", "1.00s", "1.00s"]
    # right-aligned numbers end in the same column as their header
    assert first.index("$10.0000") + len("$10.0000") == header.index("COST") + len("COST")


def test_long_cells_are_clipped_and_never_break_lines() -> None:
    record = build_record(
        error_type="upstream_error", error_message="line one\nline two " + "x" * 200
    ).to_dict()
    record["id"] = 1
    table = format_records_table([record])
    assert len(table.splitlines()) == 2 and "…" in table


def test_parse_since() -> None:
    assert parse_since("15m", now=1000.0) == 100.0
    assert parse_since("2h", now=10_000.0) == 2800.0
    assert parse_since("1d", now=100_000.0) == 13_600.0
    assert parse_since("1234.5") == 1234.5
    assert parse_since(None) is None


async def test_follow_yields_the_backlog_then_new_rows_as_they_are_written(db: Path) -> None:
    follow = follow_records(db, provider="openai", backlog=2, poll_interval=0.01)
    assert [next(follow)["request_id"] for _ in range(2)] == ["o18", "o19"]

    got: list[str] = []
    reader = threading.Thread(
        target=lambda: got.extend(next(follow)["request_id"] for _ in range(2))
    )
    reader.start()
    await write_db(db, [build_record(request_id="n1", provider="anthropic"), build_record(request_id="n2"),
                        build_record(request_id="n3")])  # fmt: skip
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert got == ["n2", "n3"]  # the anthropic row does not match the filter
    follow.close()


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no records database"):
        recent_records(tmp_path / "nope.db")
