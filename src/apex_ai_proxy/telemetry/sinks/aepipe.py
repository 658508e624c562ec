"""aepipe's wire format: what the http sink sends with `format: aepipe`.

aepipe (github.com/loadchange/aepipe, the log pipeline the Cloudflare Worker reported to) is a
Worker in front of Cloudflare Analytics Engine. Its API, as its README and SDKs document it:

    POST {base_url}/v1/{project}/{logstore}/ingest   {"points": [point, ...]}
    POST {base_url}/v1/{project}/{logstore}/log      {"logs": [entry, ...]}
    Authorization: Bearer {ADMIN_TOKEN}              (every endpoint; 401 without it)

at most 250 points or entries per request, project and logstore names `^[a-zA-Z0-9_-]{1,64}$`.
A point is `{event, level, blobs: [str] (max 15), doubles: [float] (max 20), payload?: object}`:
event, level, blobs and doubles become one Analytics Engine row (SQL-queryable for 92 days; the
blobs together must stay under 16 KB or Cloudflare truncates them silently), `payload` is kept
in D1 when the aepipe instance has it (else ignored). A log entry is `{message, level, ...}`, kept
whole in Workers Logs (7-30 days).

Request records go to `/ingest`. The first five blobs and four doubles are the Worker's own
(provider, model, endpoint type, status, stream|sync; duration_ms, status, request bytes,
response bytes), so queries written against the Worker's rows keep working; ours follow them.
The whole record is the payload. Raw captures go to `/log`, as the Worker's raw logstore had
them: a one-line message plus the redacted headers and bodies.
"""

from __future__ import annotations

from typing import Any

from ..record import RequestRecord

MAX_PER_REQUEST = 250  # aepipe answers 400 to more
# 15 blobs x 200 characters x at most 4 UTF-8 bytes stays under Analytics Engine's 16 KB
BLOB_CHARS = 200


def ingest_path(project: str, logstore: str) -> str:
    return f"/v1/{project}/{logstore}/ingest"


def log_path(project: str, logstore: str) -> str:
    return f"/v1/{project}/{logstore}/log"


def point(record: RequestRecord) -> dict[str, Any]:
    """One record as an aepipe data point (blob and double positions are documented above)."""
    blobs = [
        record.provider,
        record.model,
        endpoint_type(record.endpoint),
        str(record.status),
        "stream" if record.stream else "sync",
        # ours, after the Worker's five
        record.request_id,
        record.upstream_model,
        record.token_name or "",
        record.error_type or "",
        record.client_dialect,
        record.mode,
        record.key_id or "",
        record.requested_model,
    ]
    doubles = [
        record.duration_ms,
        record.status,
        record.bytes_in,
        record.bytes_out,
        # ours, after the Worker's four; unknown values are 0 (Analytics Engine has no null)
        record.ttfb_ms,
        record.ttft_ms,
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_tokens,
        record.reasoning_tokens,
        record.cost_usd,
        len(record.attempts),
        record.ts,
    ]
    return {
        "event": record.endpoint or "unknown",  # aepipe skips a point with an empty event
        "level": level(record),
        "blobs": [blob[:BLOB_CHARS] for blob in blobs],
        "doubles": [float(value or 0) for value in doubles],
        "payload": record.to_dict(),
    }


def log_entry(record: RequestRecord) -> dict[str, Any] | None:
    """The raw capture as an aepipe log entry, or None without one."""
    raw = record.raw_dict()
    if raw is None:
        return None
    duration = round(record.duration_ms or 0)
    message = f"{record.endpoint} {record.status} {duration}ms [{record.provider}/{record.model}]"
    return {
        "message": message,
        "level": level(record),
        "provider": record.provider,
        "model": record.model,
        "endpoint_type": endpoint_type(record.endpoint),
        "stream": record.stream,
        "status": record.status,
        "duration_ms": record.duration_ms,
        **raw,  # ts, request_id, request/response headers and bodies (redacted by the Recorder)
    }


def level(record: RequestRecord) -> str:
    return "error" if record.status >= 400 or record.error_type else "info"


def endpoint_type(endpoint: str) -> str:
    """/v1/chat/completions → chat_completions, /v1/messages → messages (the Worker's values)."""
    return endpoint.strip("/").removeprefix("v1/").replace("/", "_")


def chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [items[i : i + MAX_PER_REQUEST] for i in range(0, len(items), MAX_PER_REQUEST)]
