"""The overview's numbers (telemetry/series.py) against the records they come from: every
record counted once whether it was read raw or through the rollup, before and after the rollup
catches up; percentiles within the histogram's error; the admin API's own requests left out."""

from __future__ import annotations

import math
import random
from contextlib import closing

import pytest

from apex_ai_proxy.telemetry.series import overview, roll_up
from apex_ai_proxy.telemetry.sinks.sqlite import INSERT_RECORD, connect

NOW = 1_800_000_000.0


def write(db, rows):
    """rows: (ts, model, provider, status, duration_ms, endpoint)"""
    with closing(connect(str(db))) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            INSERT_RECORD,
            [
                (
                    ts,
                    f"r{i}-{ts}",
                    endpoint,
                    "token-1",
                    model,
                    model,
                    provider,
                    model,
                    "routed",
                    0,
                    status,
                    None,
                    duration,
                    duration / 2,
                    10,
                    5,
                    0.001,
                    "{}",
                )  # fmt: skip
                for i, (ts, model, provider, status, duration, endpoint) in enumerate(rows)
            ],
        )
        conn.execute("COMMIT")


def traffic(count, span_s, seed):
    rng = random.Random(seed)
    return [
        (NOW - rng.uniform(0, span_s), rng.choice(["m1", "m2"]), rng.choice(["p", "q"]),
         rng.choice([200, 200, 200, 429, 500]), rng.lognormvariate(6, 0.8), "/v1/chat/completions")
        for _ in range(count)
    ]  # fmt: skip


def expected(rows, result):
    inside = [r for r in rows if result["start"] <= r[0] < result["end"]]
    return len(inside), sum(1 for r in inside if r[3] >= 400)


@pytest.mark.parametrize("range_name", ["15m", "1h", "24h", "7d"])
def test_every_record_counted_once_raw_or_rolled_up(tmp_path, range_name):
    db = tmp_path / "records.db"
    first = traffic(3000, 8 * 86400, 1)
    write(db, first)
    result = overview(db, range_name, now=NOW)
    assert (result["totals"]["requests"], result["totals"]["errors"]) == expected(first, result)
    assert sum(result["series"]["requests"]) == result["totals"]["requests"]
    # More records after the rollup (and older ones arriving late): read raw, then rolled up.
    second = traffic(500, 3600, 2) + traffic(200, 2 * 86400, 3)
    write(db, second)
    for _ in range(2):
        again = overview(db, range_name, now=NOW)
        assert (again["totals"]["requests"], again["totals"]["errors"]) == expected(
            first + second, again
        )
    by_model = {row["name"]: row["requests"] for row in again["by_model"]}
    assert sum(by_model.values()) == again["totals"]["requests"]


def test_roll_up_takes_only_new_records(tmp_path):
    db = tmp_path / "records.db"
    write(db, traffic(100, 3600, 4))
    assert roll_up(db, NOW) == 100
    assert roll_up(db, NOW) == 0
    write(db, traffic(7, 3600, 5))
    assert roll_up(db, NOW) == 7


def test_percentiles_are_within_the_histogram_error(tmp_path):
    db = tmp_path / "records.db"
    rows = traffic(5000, 3000, 6)
    write(db, rows)
    result = overview(db, "1h", now=NOW)
    durations = sorted(r[4] for r in rows if result["start"] <= r[0] < result["end"])
    for fraction, name in ((0.5, "p50_ms"), (0.95, "p95_ms")):
        exact = durations[math.ceil(fraction * len(durations)) - 1]
        assert result["totals"][name] == pytest.approx(exact, rel=0.05), name


def test_admin_requests_are_not_traffic(tmp_path):
    db = tmp_path / "records.db"
    write(db, [(NOW - 60, "", "", 200, 1.0, "/admin/session"), (NOW - 60, "m", "p", 200, 5.0,
                "/v1/chat/completions")])  # fmt: skip
    for range_name in ("1h", "24h"):
        assert overview(db, range_name, now=NOW)["totals"]["requests"] == 1


def test_an_empty_file_gives_zeros_not_errors(tmp_path):
    db = tmp_path / "records.db"
    write(db, [])
    result = overview(db, "7d", now=NOW)
    assert result["totals"]["requests"] == 0 and result["totals"]["p50_ms"] is None
    assert len(result["series"]["t"]) == 84
