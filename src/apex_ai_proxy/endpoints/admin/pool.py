"""GET /admin/pool: the provider key pool, per key × model: state, until, what is left.

The rows of `apex-ai-proxy pool` (dispatch/pool_view.py), read from this process's ledger: with
Redis state what every replica shares, with local state this process's own counts.
"""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.pool_view import pool_rows
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services


def show(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        rows = await pool_rows(services.pool, services.router)
        resp = Response(body=orjson.dumps({"keys": rows}), content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        resp.headers["cache-control"] = "no-store"
        return resp

    return handle
