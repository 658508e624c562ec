"""Read side of the SQLite records for the console's overview: time series and totals.

Rows are grouped by (time bucket, model, provider, latency bin) in SQLite and Python folds the
few thousand groups into the series, the totals and the per-model / per-provider tables.
Latencies are kept as a histogram (bins a factor 2**(1/8) ≈ 1.09 wide), so p50/p95 come out
within ~5 % without pulling every duration into Python.

The long ranges (24 h, 7 d) read a rollup, `records_rollup`: the same groups per 15 minutes,
kept up to date by the reader itself (`roll_up`, before each long overview) from the rows with
an id above its mark — ids grow with every insert, so each record is counted exactly once,
late writers included, and the rows not yet rolled up are read raw. The sink's insert path
does not change. Rolled-up counts outlive records pruned by max_rows/max_mb (the rollup keeps
`ROLLUP_KEEP_S`). Measured with bench/console_overview.py (see the README).

    overview(db, range_name, now=None) -> dict  (JSON-ready; `RANGES`: the bucket sizes)
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from ..sqlite_util import open_wal
from .query import connect_readonly

# range name -> (seconds covered, bucket seconds): 30 to 100 points per chart.
RANGES: dict[str, tuple[int, int]] = {
    "15m": (15 * 60, 30),
    "1h": (3600, 60),
    "24h": (86400, 900),
    "7d": (7 * 86400, 7200),
}
BINS_PER_DOUBLING = 8
ROLLUP_STEP = 900  # ranges whose bucket is a multiple of this read the rollup
ROLLUP_KEEP_S = 8 * 86400
ROLL_CHUNK = 200_000  # rows per rollup transaction: the sink waits at most that long to write

_BIN = f"""CASE WHEN duration_ms IS NULL THEN -1
    ELSE CAST(log2(max(duration_ms, 1)) * {BINS_PER_DOUBLING} AS INTEGER) END"""
_SUMS = """count(*), sum(status >= 400 OR status = 0), coalesce(sum(ttft_ms), 0),
    count(ttft_ms), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
    coalesce(sum(cost_usd), 0)"""
# The overview is the gateway's traffic: the admin API's own requests (logins, changes) are
# in the request log, not in the charts.
_TRAFFIC = "endpoint NOT LIKE '/admin/%'"
_RAW_SQL = f"""
SELECT CAST((ts - :start) / :step AS INTEGER), model, provider, {_BIN} AS bin, {_SUMS}
FROM records {{source}} WHERE ts >= :start AND ts < :end AND {_TRAFFIC} {{extra}}
GROUP BY 1, model, provider, bin
"""
_ROLLED_SQL = """
SELECT (bucket * :rollup - :start) / :step, model, provider, bin, sum(requests), sum(errors),
    sum(ttft_sum), sum(ttft_count), sum(tokens_in), sum(tokens_out), sum(cost)
FROM records_rollup WHERE bucket >= :first AND bucket < :last
GROUP BY 1, model, provider, bin
"""
ROLLUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS records_rollup (
    bucket INTEGER NOT NULL,  -- ts // ROLLUP_STEP
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    bin INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    ttft_sum REAL NOT NULL,
    ttft_count INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (bucket, model, provider, bin)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records_rollup_mark (last_id INTEGER NOT NULL);
"""
_ROLL_SQL = f"""
INSERT INTO records_rollup
SELECT CAST(ts / {ROLLUP_STEP} AS INTEGER), model, provider, {_BIN} AS bin, {_SUMS}
FROM records WHERE id > :mark AND id <= :upto AND {_TRAFFIC}
GROUP BY 1, model, provider, bin
ON CONFLICT (bucket, model, provider, bin) DO UPDATE SET
    requests = requests + excluded.requests, errors = errors + excluded.errors,
    ttft_sum = ttft_sum + excluded.ttft_sum, ttft_count = ttft_count + excluded.ttft_count,
    tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out,
    cost = cost + excluded.cost
"""


@dataclass(slots=True)
class _Acc:
    """Sums for one slice (a bucket, a model, a provider, or everything)."""

    requests: int = 0
    errors: int = 0
    ttft_sum: float = 0.0
    ttft_count: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)

    def add(self, row: tuple) -> None:
        _, _, _, bin_, count, errors, ttft_sum, ttft_count, tin, tout, cost = row
        self.requests += count
        self.errors += errors or 0
        self.ttft_sum += ttft_sum
        self.ttft_count += ttft_count
        self.tokens_in += tin
        self.tokens_out += tout
        self.cost += cost
        if bin_ >= 0:
            self.bins[bin_] = self.bins.get(bin_, 0) + count

    def view(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "p50_ms": _percentile(self.bins, 0.50),
            "p95_ms": _percentile(self.bins, 0.95),
            "ttft_ms": round(self.ttft_sum / self.ttft_count, 1) if self.ttft_count else None,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost, 6),
        }


def _percentile(bins: dict[int, int], fraction: float) -> float | None:
    """The middle of the bin holding the nearest-rank percentile (log scale, ~±4.5 %)."""
    total = sum(bins.values())
    if not total:
        return None
    rank = max(1, math.ceil(round(fraction * total, 9)))
    seen = 0
    for bin_ in sorted(bins):
        seen += bins[bin_]
        if seen >= rank:
            return round(2 ** ((bin_ + 0.5) / BINS_PER_DOUBLING), 1)
    return None  # unreachable: the last bin holds the total


def roll_up(db_path: str | os.PathLike[str], now: float | None = None) -> int:
    """Fold the records written since the last call into `records_rollup`; returns how many.
    Safe beside other processes doing the same: the mark is read and moved in one write
    transaction."""
    now = time.time() if now is None else now
    rolled = 0
    with closing(open_wal(str(db_path), busy_timeout_ms=5000, schema=ROLLUP_SCHEMA)) as conn:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                mark = _mark(conn)
                (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()
                upto = min(top, mark + ROLL_CHUNK)
                if upto > mark:
                    conn.execute(_ROLL_SQL, {"mark": mark, "upto": upto})
                    conn.execute("UPDATE records_rollup_mark SET last_id = ?", [upto])
                    oldest = int((now - ROLLUP_KEEP_S) // ROLLUP_STEP)
                    conn.execute("DELETE FROM records_rollup WHERE bucket < ?", [oldest])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            rolled += upto - mark
            if upto >= top:
                return rolled


def _mark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT last_id FROM records_rollup_mark").fetchone()
    if row is None:
        conn.execute("INSERT INTO records_rollup_mark (last_id) VALUES (0)")
        return 0
    return row[0]


def overview(
    db_path: str | os.PathLike[str], range_name: str, now: float | None = None
) -> dict[str, Any]:
    """Series (one point per bucket) and totals over `range_name`, by model and by provider."""
    span, step = RANGES[range_name]
    now = time.time() if now is None else now
    end = math.floor(now / step) * step + step
    start = end - span
    use_rollup = step % ROLLUP_STEP == 0
    if use_rollup:
        # A read-only file: what is not rolled up is read raw (slower, still right).
        with contextlib.suppress(sqlite3.Error):
            roll_up(db_path, now)
    with closing(connect_readonly(db_path)) as conn:
        conn.execute("BEGIN")  # one snapshot: the mark and the rows agree
        rows = _rows(conn, start, end, step, use_rollup)
        conn.execute("COMMIT")
    return _fold(rows, start, end, step, range_name)


def _rows(conn: sqlite3.Connection, start: int, end: int, step: int, use_rollup: bool) -> list:
    params = {"start": start, "end": end, "step": step}
    if not use_rollup:
        return conn.execute(_RAW_SQL.format(source="", extra=""), params).fetchall()
    mark = _read_mark(conn)
    rolled = conn.execute(
        _ROLLED_SQL,
        {
            **params,
            "rollup": ROLLUP_STEP,
            "first": start // ROLLUP_STEP,
            "last": end // ROLLUP_STEP,
        },
    ).fetchall()
    # The rows above the mark: a rowid range (NOT INDEXED keeps the planner off the ts index,
    # which would walk the whole range).
    tail = conn.execute(
        _RAW_SQL.format(source="NOT INDEXED", extra="AND id > :mark"), {**params, "mark": mark}
    ).fetchall()
    return rolled + tail


def _read_mark(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT last_id FROM records_rollup_mark").fetchone()
    except sqlite3.OperationalError:  # never rolled up (no such table)
        return 0
    return row[0] if row is not None else 0


def _fold(rows: list, start: int, end: int, step: int, range_name: str) -> dict[str, Any]:
    count = (end - start) // step
    buckets = [_Acc() for _ in range(count)]
    total, by_model, by_provider = _Acc(), {}, {}
    model_requests: dict[str, list[int]] = {}
    for row in rows:
        bucket, model, provider = int(row[0]), row[1], row[2]
        if not 0 <= bucket < count:
            continue
        buckets[bucket].add(row)
        total.add(row)
        by_model.setdefault(model, _Acc()).add(row)
        by_provider.setdefault(provider, _Acc()).add(row)
        model_requests.setdefault(model or "-", [0] * count)[bucket] += row[4]
    views = [b.view() for b in buckets]
    return {
        "range": range_name,
        "start": start,
        "end": end,
        "step_s": step,
        "series": {
            "t": [start + i * step for i in range(count)],
            **{name: [v[name] for v in views] for name in views[0]},
            "requests_by_model": model_requests,
        },
        "totals": total.view(),
        "by_model": _table(by_model),
        "by_provider": _table(by_provider),
    }


def _table(groups: dict[str, _Acc]) -> list[dict[str, Any]]:
    rows = [{"name": name or "-", **acc.view()} for name, acc in groups.items()]
    rows.sort(key=lambda r: (-r["requests"], r["name"]))
    return rows
