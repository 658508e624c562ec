"""The request log and one request's story.

GET /admin/requests?model=&provider=&status=&key=&since=&until=&before_id=&limit=
    newest first; `status`: 200, 2xx/4xx/5xx or error; `key`: the gateway token's or
    virtual key's name; `since`/`until`: epoch seconds or a duration back ("15m");
    `before_id`: the next page (the last row's `id`); `limit` up to 500
GET /admin/requests/{request_id}
    the whole record: every attempt (provider, key name, status, reason, latency) and,
    when `records.raw` is on, the raw headers and bodies (redacted before they were stored)
"""

from __future__ import annotations

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import BadRequest, NotFound
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services
from apex_ai_proxy.telemetry.lookup import request_log, request_story
from apex_ai_proxy.telemetry.query import parse_since

from ._common import json_answer, number, read_records

MAX_LIMIT = 500


def listing(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        q = request.query
        limit = number(q.get("limit"), "limit", 1, MAX_LIMIT)
        before = number(q.get("before_id"), "before_id", 1, 2**62)
        rows = await read_records(
            services,
            request_log,
            model=q.get("model") or None,
            provider=q.get("provider") or None,
            status=_status(q.get("status")),
            token=q.get("key") or None,
            since=_time(q.get("since"), "since"),
            until=_time(q.get("until"), "until"),
            before_id=None if before is None else int(before),
            limit=100 if limit is None else int(limit),
        )
        return json_answer({"requests": rows}, ctx)

    return handle


def story(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        request_id = request.match_info["request_id"]
        found = await read_records(services, request_story, request_id)
        if found is None:
            raise NotFound(f"No record of request {request_id!r}.", code="unknown_request")
        return json_answer(found, ctx)

    return handle


def _status(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().lower()
    if text == "error" or (
        len(text) == 3 and (text.isdigit() or (text[0].isdigit() and text[1:] == "xx"))
    ):
        return text
    raise BadRequest("status must be a status code, 2xx/4xx/5xx or error.", param="status")


def _time(value: str | None, param: str) -> float | None:
    if not value:
        return None
    try:
        found = parse_since(value)
    except ValueError:
        raise BadRequest(
            f"{param} must be epoch seconds or a duration such as 15m, 2h, 7d.", param=param
        ) from None
    if found is None or found != found or abs(found) > 1e11:  # NaN, or not a real time
        raise BadRequest(f"{param} is out of range.", param=param)
    return found
