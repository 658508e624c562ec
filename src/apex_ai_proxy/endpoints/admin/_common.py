"""What the admin API's modules share: JSON answers, the records file they read, and running
the (synchronous, file-reading) queries off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import BadRequest, GatewayError
from apex_ai_proxy.http import Response
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.config import SqliteSinkConfig

T = TypeVar("T")


def json_answer(data: Any, ctx: RequestContext, status: int = 200) -> Response:
    resp = Response(status, orjson.dumps(data), content_type="application/json")
    resp.headers["x-request-id"] = ctx.request_id
    resp.headers["cache-control"] = "no-store"
    return resp


def records_db(services: Services) -> Path:
    """The SQLite records file (the first sqlite sink); 503 when records are not kept there."""
    records = services.config.records
    for sink in records.sinks if records.enabled else []:
        if isinstance(sink, SqliteSinkConfig):
            return Path(sink.path)
    raise GatewayError(
        "Request records are not kept in SQLite (records.sinks has no sqlite sink), so the "
        "admin API has no traffic to show.",
        status=503,
        code="records_unavailable",
    )


async def read_records(services: Services, query: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run `query(db, *args, **kw)` on a thread (sqlite3 blocks)."""
    db = records_db(services)
    try:
        return await asyncio.to_thread(query, db, *args, **kw)
    except FileNotFoundError:
        raise GatewayError(
            "No records yet: the records file has not been created.",
            status=503,
            code="records_unavailable",
        ) from None


def choice(value: str | None, allowed: dict[str, Any] | tuple[str, ...], param: str) -> str:
    if value is None or value not in allowed:
        raise BadRequest(f"{param} must be one of {', '.join(allowed)}.", param=param)
    return value


def number(value: str | None, param: str, low: float, high: float) -> float | None:
    """An optional number from the query string, within [low, high]; 400 otherwise."""
    if value is None or value == "":
        return None
    try:
        found = float(value)
    except ValueError:
        raise BadRequest(f"{param} must be a number.", param=param) from None
    if not low <= found <= high:
        raise BadRequest(f"{param} must be between {low:g} and {high:g}.", param=param)
    return found
