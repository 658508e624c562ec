"""POST /v1/chat/completions: OpenAI chat, to any upstream dialect, whole or streamed."""

from __future__ import annotations

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.http import Request, StreamResponse
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

from .intake import accept_model_request, validate_chat

CHAT = Operation("openai_chat")


def handler(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        body, route = await accept_model_request(services, request, ctx, validate_chat)
        stream = ctx.stream = body.get("stream") is True
        return await services.dispatcher.run(request, ctx, CHAT, route, body, stream, {})

    return handle
