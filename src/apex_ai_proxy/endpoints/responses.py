"""The `/v1/responses` endpoints: create (streamed or not), retrieve, delete, input items, cancel.

    POST   /v1/responses                      expand previous_response_id, dispatch, store
    GET    /v1/responses/{id}                 the stored Response object
    DELETE /v1/responses/{id}
    GET    /v1/responses/{id}/input_items     this response's own input, OpenAI's list shape
    POST   /v1/responses/{id}/cancel          only background responses can be cancelled, and
                                              the gateway runs none: 400 (404 if unknown)

How conversations are expanded, pinned, stored and scoped: `conversations/`.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.conversations.chain import history, lost_state, pinned_route
from apex_ai_proxy.conversations.items import list_page, normalize_input, validate_create
from apex_ai_proxy.conversations.store import DIALECT
from apex_ai_proxy.conversations.tap import StoreTap
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import AllRateLimited, BadRequest, StoreUnavailable, UpstreamUnavailable
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.routing import Route
from apex_ai_proxy.services import Services

from .intake import accept_model_request

log = logging.getLogger("apex_ai_proxy.responses")


def create(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> StreamResponse:
        body, route = await accept_model_request(services, request, ctx, validate_create)
        ctx.stream = body.get("stream") is True
        return await _create(services, request, ctx, route, body)

    return handle


async def _create(
    services: Services, request: Request, ctx: RequestContext, route: Route, body: dict
) -> StreamResponse:
    store = services.conversations
    keep = body.get("store") is not False
    previous_id = body.get("previous_response_id")
    if (keep or previous_id) and not store.reachable:  # say so before spending quota
        raise StoreUnavailable(
            "The response store is unreachable; the gateway is reconnecting in the "
            "background (its log says where the store is). Retry later, or "
            "send store: false without previous_response_id for an answer that is not stored."
        )
    chain = await store.conversation(previous_id, store.owner_of(ctx)) if previous_id else []
    # Clients that keep their own history (store false, no previous id) pay for nothing here.
    own_items = normalize_input(body.get("input")) if keep or chain else []
    tap = StoreTap(store, body, own_items, previous_id, keep) if keep or previous_id else None
    op = Operation(DIALECT, tap=tap)
    run = services.dispatcher.run
    if chain:
        pinned = pinned_route(store, route, chain[-1])
        if pinned is not None:
            same = {**body, "previous_response_id": chain[-1].upstream_response_id}
            try:
                response = await run(request, ctx, op, pinned, same, ctx.stream, {})
            except (UpstreamUnavailable, AllRateLimited) as exc:
                log.info("previous upstream unavailable, sending the conversation: %s", exc)
            else:
                if not lost_state(response):
                    return response
            ctx.error_type = ctx.error_message = None  # the fallback below answers instead
        body = {k: v for k, v in body.items() if k != "previous_response_id"}
        body["input"] = history(chain) + own_items
    return await run(request, ctx, op, route, body, ctx.stream, {})


def retrieve(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        if request.query.get("stream") in ("true", "1"):
            raise BadRequest(
                "Streaming a stored response again is not supported by this gateway; "
                "retrieve it without 'stream'.",
                param="stream",
            )
        store = services.conversations
        record = await store.get(request.match_info["id"], store.owner_of(ctx))
        return _json(ctx, record.response)

    return handle


def delete(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        response_id = request.match_info["id"]
        store = services.conversations
        await store.delete(response_id, store.owner_of(ctx))
        return _json(ctx, {"id": response_id, "object": "response.deleted", "deleted": True})

    return handle


def input_items(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        store = services.conversations
        record = await store.get(request.match_info["id"], store.owner_of(ctx))
        return _json(ctx, list_page(record.input_items, request.query))

    return handle


def cancel(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        response_id = request.match_info["id"]
        store = services.conversations
        await store.get(response_id, store.owner_of(ctx))
        raise BadRequest(
            f"Response '{response_id}' cannot be cancelled: only background responses can "
            "be, and this gateway does not run background responses.",
            code="not_cancellable",
        )

    return handle


def _json(ctx: RequestContext, value: Any) -> Response:
    response = Response(body=orjson.dumps(value), content_type="application/json")
    response.headers["x-request-id"] = ctx.request_id
    return response
