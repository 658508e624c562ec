"""Read side of the SQLite records, for `apex-ai-proxy logs [--follow]` and `apex-ai-proxy stats`.

Plain synchronous sqlite3 (the CLI is not on the event loop), read-only connections, so it is
safe to run against the file a live gateway is writing.

    recent_records(db, model=, provider=, status=, since=, limit=)  -> newest first, as dicts
    follow_records(db, ...)                                          -> generator, oldest first
    stats(db, since=)                                                -> list[StatsRow]
    format_records_table(records) / format_stats_table(rows)         -> fixed-width text

`status` is an int (exact), "2xx"/"4xx"/"5xx", or "error" (>= 400). `since` is epoch seconds or
a duration back from now: "90s", "15m", "2h", "7d".
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .sinks.sqlite import COLUMN_FIELDS

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The record's own fields among the columns (`model` is derived), then `data` with the rest.
_RECORD_FIELDS = tuple(name for name in COLUMN_FIELDS if name != "model")
_RECORD_COLUMNS = ", ".join(("id", *_RECORD_FIELDS, "data"))
Filter = tuple[str, list[Any]]


def parse_since(since: float | str | None, now: float | None = None) -> float | None:
    """Epoch seconds from an epoch number or a duration such as "15m"; None stays None."""
    if since is None or isinstance(since, int | float):
        return since
    text = since.strip().lower()
    now = time.time() if now is None else now
    if text and text[-1] in _UNITS:
        return now - float(text[:-1]) * _UNITS[text[-1]]
    return float(text)


def _connect(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    if not os.path.exists(db_path):
        raise FileNotFoundError(f"no records database at {db_path}")
    # check_same_thread off: a generator (follow_records) may be resumed from another thread;
    # each connection is still used by one thread at a time.
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"  # as_uri escapes "?", "#", spaces
    conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


# The other read-side modules (series, lookup) open their connections the same way.
connect_readonly = _connect


def _where(
    model: str | None = None,
    provider: str | None = None,
    status: int | str | None = None,
    since: float | str | None = None,
    key: str | None = None,
) -> Filter:
    clauses: list[str] = []
    params: list[Any] = []
    if key:  # a virtual key's name (or a gateway token's, token-N): the records' token_name
        clauses.append("token_name = ?")
        params.append(key)
    if model:
        clauses.append("(model = ? OR requested_model = ?)")
        params += [model, model]
    if provider:
        clauses.append("provider = ?")
        params.append(provider)
    if status is not None:
        clause, values = _status_clause(status)
        clauses.append(clause)
        params += values
    start = parse_since(since)
    if start is not None:
        clauses.append("ts >= ?")
        params.append(start)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _status_clause(status: int | str) -> Filter:
    text = str(status).strip().lower()
    if text == "error":
        return "status >= ?", [400]
    if len(text) == 3 and text.endswith("xx") and text[0].isdigit():
        low = int(text[0]) * 100
        return "status >= ? AND status < ?", [low, low + 100]
    return "status = ?", [int(text)]


def recent_records(
    db_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    provider: str | None = None,
    status: int | str | None = None,
    since: float | str | None = None,
    limit: int = 50,
    key: str | None = None,
) -> list[dict[str, Any]]:
    """The newest matching records, newest first (each the full record dict plus its `id`)."""
    where, params = _where(model, provider, status, since, key)
    with closing(_connect(db_path)) as conn:
        rows = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records{where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
    return [_decode(row) for row in rows]


def follow_records(
    db_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    provider: str | None = None,
    status: int | str | None = None,
    backlog: int = 20,
    poll_interval: float = 1.0,
    key: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the last `backlog` matching records, then each new one as it is written (forever;
    the caller stops iterating). New rows are found by rowid, so polling is one indexed query."""
    where, params = _where(model, provider, status, key=key)
    last_id = 0
    for record in reversed(
        recent_records(
            db_path, model=model, provider=provider, status=status, limit=backlog, key=key
        )
    ):
        last_id = record["id"]
        yield record
    if backlog <= 0:
        with closing(_connect(db_path)) as conn:
            last_id = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
    glue = " AND " if where else " WHERE "
    with closing(_connect(db_path)) as conn:
        while True:
            rows = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records{where}{glue}id > ? ORDER BY id LIMIT 500",
                [*params, last_id],
            ).fetchall()
            for row in rows:
                last_id = row[0]
                yield _decode(row)
            if not rows:
                time.sleep(poll_interval)


@dataclass(slots=True)
class StatsRow:
    model: str
    provider: str
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def stats(
    db_path: str | os.PathLike[str], *, since: float | str | None = None, by: str = "model"
) -> list[StatsRow]:
    """Per (model, provider), or with by="key" per key (token_name: a virtual key's name or
    token-N; the row's `model` holds it, `provider` is empty): requests, errors, p50/p95
    duration, tokens, cost; busiest first."""
    where, params = _where(since=since)
    groups: dict[tuple[str, str], list[Any]] = {}
    group_by = "coalesce(token_name, ''), ''" if by == "key" else "model, provider"
    with closing(_connect(db_path)) as conn:
        cursor = conn.execute(
            f"SELECT {group_by}, status, duration_ms, prompt_tokens, completion_tokens,"
            f" cost_usd FROM records{where}",
            params,
        )
        for model, provider, status, duration, prompt, completion, cost in cursor:
            group = groups.setdefault((model, provider), [0, 0, [], 0, 0, 0.0])
            group[0] += 1
            group[1] += status >= 400 or status == 0
            if duration is not None:
                group[2].append(duration)
            group[3] += prompt or 0
            group[4] += completion or 0
            group[5] += cost or 0.0
    rows = []
    for (model, provider), (count, errors, durations, prompt, completion, cost) in groups.items():
        durations.sort()
        rows.append(
            StatsRow(
                model=model,
                provider=provider,
                requests=count,
                errors=errors,
                p50_ms=_percentile(durations, 0.50),
                p95_ms=_percentile(durations, 0.95),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_usd=cost,
            )
        )
    rows.sort(key=lambda r: (-r.requests, r.model, r.provider))
    return rows


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return None
    rank = math.ceil(
        round(fraction * len(ordered), 9)
    )  # round: 0.95 * 20 must be 19, not 19.0000001
    return ordered[min(max(rank, 1), len(ordered)) - 1]


# --- formatting ------------------------------------------------------------------------------


def format_records_table(records: Sequence[dict[str, Any]]) -> str:
    """One line per record: time, status, model → provider/upstream, timings, tokens, cost."""
    header = ("TIME", "STATUS", "MODEL", "PROVIDER", "UPSTREAM", "S", "TTFT", "TOTAL",
              "IN", "OUT", "COST", "REQUEST ID", "ERROR")  # fmt: skip
    lines = [
        (
            time.strftime("%m-%d %H:%M:%S", time.localtime(r["ts"])),
            str(r["status"]),
            r.get("mapped_model") or r.get("requested_model") or "-",
            r.get("provider") or "-",
            r.get("upstream_model") or "-",
            "S" if r.get("stream") else "",
            _ms(r.get("ttft_ms")),
            _ms(r.get("duration_ms")),
            _int(r.get("prompt_tokens")),
            _int(r.get("completion_tokens")),
            _usd(r.get("cost_usd")),
            r.get("request_id") or "",
            _error(r),
        )
        for r in records
    ]
    return _table(header, lines, right={1, 6, 7, 8, 9, 10})


def format_stats_table(rows: Sequence[StatsRow], by: str = "model") -> str:
    first = ("KEY", "") if by == "key" else ("MODEL", "PROVIDER")
    header = (*first, "REQUESTS", "ERR%", "P50", "P95", "IN TOK", "OUT TOK", "COST")
    lines = [
        (
            r.model or "-",
            r.provider or "-",
            str(r.requests),
            f"{r.error_rate * 100:.1f}",
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            _int(r.prompt_tokens),
            _int(r.completion_tokens),
            _usd(r.cost_usd),
        )
        for r in rows
    ]
    return _table(header, lines, right={2, 3, 4, 5, 6, 7, 8})


MAX_CELL = 40


def _table(header: Sequence[str], lines: Sequence[Sequence[str]], right: set[int]) -> str:
    cells = [[_clip(c) for c in line] for line in lines]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(header)]

    def render(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([render(header), *(render(line) for line in cells)])


def _clip(text: str) -> str:
    text = " ".join(text.split())  # no newlines or tabs inside a cell
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms"


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _error(record: dict[str, Any]) -> str:
    if not record.get("error_type") and not record.get("error_message"):
        return ""
    return f"{record.get('error_type') or 'error'}: {record.get('error_message') or ''}".strip()


def _decode(row: tuple) -> dict[str, Any]:
    """A row (_RECORD_COLUMNS) as the record's dict, plus its `id`."""
    row_id, *values, data = row
    record = dict(zip(_RECORD_FIELDS, values, strict=True))
    record["stream"] = bool(record["stream"])
    record.update(orjson.loads(data))
    record["id"] = row_id
    return record
