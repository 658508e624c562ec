"""POST /admin/reload: apply the config file this process was started with, again.

200 with what changed — providers, models and keys (by unit name, "provider#1") added, removed
or changed, and the sections that need a restart — or 400 with the problems `check` lists for
the file, in which case the running config stays. Neither answer holds a secret: the changes
are names, and a problem names a path and what is wrong with it, never the value.
"""

from __future__ import annotations

import logging

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import GatewayError
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.reload import ReloadRefused
from apex_ai_proxy.services import Services

log = logging.getLogger("apex_ai_proxy")


def apply(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        if services.reload is None:
            raise GatewayError("This gateway cannot reload its config.", code="reload_unavailable")
        try:
            changes = services.reload()
        except ReloadRefused as refused:
            for line in refused.lines:
                log.error("%s", line)
            log.error("config reload (POST /admin/reload) refused: the previous config stays")
            return _refused(refused, ctx)
        log.info("config reloaded (POST /admin/reload): %s", changes.summary())
        return _json(200, {"reloaded": True, "changes": changes.as_json()}, ctx)

    return handle


def _refused(refused: ReloadRefused, ctx: RequestContext) -> Response:
    """400 in OpenAI's error shape, with check's problems listed one by one beside it."""
    message = "The config was not reloaded; the previous config stays. " + refused.lines[0]
    ctx.error_type, ctx.error_message = "invalid_request_error", message
    error = {"message": message, "type": "invalid_request_error", "code": "invalid_config"}
    return _json(400, {"error": error, "problems": refused.problems}, ctx)


def _json(status: int, payload: object, ctx: RequestContext) -> Response:
    resp = Response(status=status, body=orjson.dumps(payload), content_type="application/json")
    resp.headers["x-request-id"] = ctx.request_id
    resp.headers["cache-control"] = "no-store"
    return resp
