"""POST /v1/embeddings: OpenAI's embeddings, to the route's targets that can embed."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.http import Request, StreamResponse
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.routing import Route
from apex_ai_proxy.services import Services

from .intake import accept_model_request

if TYPE_CHECKING:
    from apex_ai_proxy.providers.base import Target

EMBEDDINGS = Operation("openai_chat", "embeddings")


def handler(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        body, route = await accept_model_request(services, request, ctx, validate_embeddings)
        route = embeddings_route(route)
        ctx.stream = False
        return await services.dispatcher.run(request, ctx, EMBEDDINGS, route, body, False, {})

    return handle


def validate_embeddings(body: dict) -> None:
    value = body.get("input")
    if value is None:
        raise BadRequest("Missing required field 'input'.", param="input")
    if not isinstance(value, str | list) or not value:
        raise BadRequest(
            "Field 'input' must be a non-empty string or array (of strings or token arrays).",
            param="input",
        )


def embeddings_route(route: Route) -> Route:
    """`route` without the targets that cannot embed; a 400 when none can."""
    targets = [t for t in route.targets if _embeds(t)]
    if not targets:
        raise BadRequest(
            f"Model '{route.name}' does not support embeddings; use an OpenAI-compatible model.",
            param="model",
        )
    if len(targets) == len(route.targets):
        return route
    return replace(route, targets=targets)


def _embeds(target: Target) -> bool:
    adapter = target.adapter
    return adapter.embeddings_url(adapter.base_for(target), target.upstream_model) is not None
