"""Read side of the SQLite records for the console's request log and a request's story.

    request_log(db, model=, provider=, status=, token=, since=, until=, before_id=, limit=)
        -> newest first, one summary dict per request (attempt count, no bodies)
    request_story(db, request_id) -> the whole record with its attempts, plus the (already
        redacted) raw capture when `records.raw` was on; None when unknown
    key_traffic(db, since) -> {key name: (attempts, 429s)} from the records' attempts
    failure_timeline(db, since, until, step) -> 429s and 5xx/no answer per provider over time,
        counted per attempt (a 429 that failed over to another key still counts)

Same read-only connections as `telemetry.query` (safe beside the live writer). `token` is a
gateway token's or virtual key's NAME, as records store it.
"""

from __future__ import annotations

import os
from contextlib import closing
from typing import Any

import orjson

from .query import _RECORD_COLUMNS, _decode, _where, connect_readonly, parse_since

SUMMARY_FIELDS = (
    "id", "ts", "request_id", "endpoint", "token_name", "requested_model", "mapped_model",
    "provider", "upstream_model", "stream", "status", "error_type", "error_message",
    "ttft_ms", "duration_ms", "prompt_tokens", "completion_tokens", "cost_usd",
)  # fmt: skip


def request_log(
    db_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    provider: str | None = None,
    status: int | str | None = None,
    token: str | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where, params = _where(model, provider, status, since)
    clauses = [where[len(" WHERE ") :]] if where else []
    if token:
        clauses.append("token_name = ?")
        params.append(token)
    end = parse_since(until)
    if end is not None:
        clauses.append("ts < ?")
        params.append(end)
    if before_id is not None:  # the next page: older than the last row shown
        clauses.append("id < ?")
        params.append(before_id)
    sql_where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with closing(connect_readonly(db_path)) as conn:
        rows = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records{sql_where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
    return [_summary(_decode(row)) for row in rows]


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    summary = {name: record.get(name) for name in SUMMARY_FIELDS}
    summary["attempts"] = len(record.get("attempts") or [])
    return summary


def request_story(db_path: str | os.PathLike[str], request_id: str) -> dict[str, Any] | None:
    with closing(connect_readonly(db_path)) as conn:
        row = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE request_id = ? ORDER BY id DESC LIMIT 1",
            [request_id],
        ).fetchone()
        if row is None:
            return None
        raw = conn.execute(
            "SELECT data FROM raw_records WHERE request_id = ? ORDER BY id DESC LIMIT 1",
            [request_id],
        ).fetchone()
    record = _decode(row)
    record["raw"] = orjson.loads(raw[0]) if raw is not None else None
    return record


def key_traffic(db_path: str | os.PathLike[str], since: float) -> dict[str, tuple[int, int]]:
    """Attempts and 429s per provider key since `since`, from every record's attempt list."""
    sql = (
        "SELECT json_extract(a.value, '$.key_name') AS key_name, count(*),"
        " sum(json_extract(a.value, '$.status') = 429)"
        " FROM records, json_each(records.data, '$.attempts') AS a"
        " WHERE records.ts >= ? GROUP BY key_name"
    )
    with closing(connect_readonly(db_path)) as conn:
        rows = conn.execute(sql, [since]).fetchall()
    return {key: (count, limited or 0) for key, count, limited in rows if key}


def failure_timeline(
    db_path: str | os.PathLike[str], since: float, until: float, step: int
) -> dict[str, Any]:
    """Failed attempts per provider per `step` seconds: {"t": [...], "rate_limited": {provider:
    [...]}, "server_errors": {provider: [...]}} (server errors: 5xx, timeouts, no answer)."""
    count = max(1, int((until - since) // step))
    sql = (
        "SELECT CAST((records.ts - ?) / ? AS INTEGER) AS bucket,"
        " json_extract(a.value, '$.provider') AS attempt_provider,"
        " sum(coalesce(json_extract(a.value, '$.status'), 0) = 429),"
        " sum(coalesce(json_extract(a.value, '$.status'), 0) NOT BETWEEN 1 AND 499)"
        " FROM records, json_each(records.data, '$.attempts') AS a"
        " WHERE records.ts >= ? AND records.ts < ? GROUP BY bucket, attempt_provider"
    )
    limited: dict[str, list[int]] = {}
    failed: dict[str, list[int]] = {}
    with closing(connect_readonly(db_path)) as conn:
        for bucket, provider, n429, n5xx in conn.execute(sql, [since, step, since, until]):
            if provider is None or not 0 <= bucket < count:
                continue
            limited.setdefault(provider, [0] * count)[bucket] += n429 or 0
            failed.setdefault(provider, [0] * count)[bucket] += n5xx or 0
    return {
        "t": [since + i * step for i in range(count)],
        "rate_limited": limited,
        "server_errors": failed,
    }
