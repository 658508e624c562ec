"""Probe of `logs` and `stats` as a real subprocess: pointed at a file that is not a records
database, a database without the records table, or one of another shape, and given flags with
typos. Each is a one-line message and a non-zero exit, never a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cli_run import run_cli


def not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n", encoding="utf-8")
    return path


def other_tables(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (a)")
    conn.commit()
    conn.close()
    return path


def other_records_shape(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE records (ts, status)")
    conn.execute("INSERT INTO records VALUES ('yesterday', 'ok')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("make", [not_a_database, other_tables, other_records_shape])
@pytest.mark.parametrize("command", ["logs", "stats"])
def test_logs_and_stats_on_a_file_that_is_not_a_records_database_say_so(
    tmp_path: Path, command: str, make
) -> None:
    db = make(tmp_path)
    result = run_cli(command, "--db", str(db))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert f"cannot read records from {db}" in output, output


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--status", "xx"),
        ("--status", "4"),
        ("--since", "garbage"),
        ("--since", "5y"),
        ("--limit", "-3"),
    ],
)
def test_a_typo_in_a_logs_flag_is_a_usage_error_not_a_traceback(
    tmp_path: Path, flag: str, value: str
) -> None:
    db = other_tables(tmp_path)
    result = run_cli("logs", "--db", str(db), flag, value)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # argparse's usage error
    assert "Traceback" not in output, output
    assert f"argument {flag}" in output, output
