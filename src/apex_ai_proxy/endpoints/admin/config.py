"""GET /admin/config: the config this process runs, as JSON, with every secret masked.

Masked by the records' redactor (every configured key and token, in any escaping, becomes
"[REDACTED]"), so the view can be shown in a browser or pasted into an issue.
"""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services


def show(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        config = services.config
        dumped = orjson.dumps({"source": config.source, "config": config.model_dump(mode="json")})
        body = services.recorder.redactor.scrub_bytes(dumped)
        resp = Response(body=body, content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        resp.headers["cache-control"] = "no-store"
        return resp

    return handle
