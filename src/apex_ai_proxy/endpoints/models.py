"""GET /v1/models: the configured model names, in OpenAI's list shape."""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services


def listing(names: list[str]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "apex-ai-proxy"}
                for name in names
            ],
        }
    )


def handler(services: Services) -> Handle:
    names = services.router.model_names()
    every = listing(names)  # the list changes only with the config: encoded once

    async def handle(request: Request, ctx: RequestContext) -> Response:
        keys = services.virtual_keys
        body = every
        if keys is not None:  # a virtual key lists the models its allowlist lets it use
            allowed = keys.allowed_models(ctx.token_name, names)
            body = every if allowed is names else listing(allowed)
        resp = Response(body=body, content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        return resp

    return handle
