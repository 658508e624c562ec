"""GET /v1/models: the configured model names, in OpenAI's list shape."""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services


def handler(services: Services) -> Handle:
    body = orjson.dumps(  # the list changes only with the config: encoded once
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "apex-ai-proxy"}
                for name in services.router.model_names()
            ],
        }
    )

    async def handle(request: Request, ctx: RequestContext) -> Response:
        resp = Response(body=body, content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        return resp

    return handle
