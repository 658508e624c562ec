"""The `/v1/responses` endpoints: create (streamed or not), retrieve, delete, input items, cancel.

    POST   /v1/responses                      expand previous_response_id, dispatch, store
    GET    /v1/responses/{id}                 the stored Response object
    DELETE /v1/responses/{id}
    GET    /v1/responses/{id}/input_items     this response's own input, OpenAI's list shape
    POST   /v1/responses/{id}/cancel          only background responses can be cancelled, and
                                              the gateway runs none: 400 (404 if unknown)

Conversations: a request naming `previous_response_id` gets the stored items of the whole chain
put in front of its own input (instructions do not carry over), and is sent to any upstream.
When the previous response came from a native Responses upstream that kept it (`store` not
false), the request is first sent to that same provider and key with the upstream's own
previous_response_id, so the upstream's state (and its prompt cache) is used; if that upstream
cannot answer, the expanded conversation goes to the route as usual.

Storing: with `store` (default true) the response is written under its id before the id reaches
the client: a non-streamed answer before it is sent; a stream when `response.created` passes
(status in_progress), again when it ends (completed / incomplete / failed). `store: false`
keeps nothing. Records name the upstream by provider and key *name*, never a secret.

Scope: a stored response belongs to the gateway token that created it (its name is stored, not
the token). Another token's GET, DELETE, input_items, cancel or previous_response_id gets what
an unknown id gets (404; 400 for previous_response_id), so it cannot learn the id exists.
Without gateway tokens everything is one scope.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects.responses import gateway_id
from apex_ai_proxy.dispatch import Operation
from apex_ai_proxy.errors import (
    AllRateLimited,
    BadRequest,
    GatewayError,
    NotFound,
    StoreUnavailable,
    UpstreamUnavailable,
    stream_error_event,
)
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.pipeline import (
    accept_model_request,
    error_response,
    internal_error,
    stream_started,
)
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.relay import StreamSink
from apex_ai_proxy.routing import Route
from apex_ai_proxy.sse import SSEEvent, SSEParser, encode_event
from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.responses_store import (
    ConversationError,
    Owner,
    ResponseNotFoundError,
    ResponseStore,
    ResponseStoreError,
    ResponseStoreUnavailableError,
    StoredResponse,
    open_store,
)

if TYPE_CHECKING:
    from apex_ai_proxy.server import Gateway

log = logging.getLogger("apex_ai_proxy.responses")

DIALECT = "responses"
ENDPOINT = "/v1/responses"
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
LIFECYCLE_EVENTS = FINAL_EVENTS | {"response.created", "response.in_progress", "response.queued"}
ITEM_ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


STORE_DOWN = (
    "The response store is unavailable; retry later, or send store: false without "
    "previous_response_id for an answer that is not stored."
)


def _store_down(exc: ResponseStoreError) -> StoreUnavailable:
    """The client's 503; the store's address and the driver's words are the operator's (log)."""
    log.warning("response store unavailable: %s", exc)
    return StoreUnavailable(STORE_DOWN)


# --- input items -----------------------------------------------------------------------------


def normalize_input(value: Any) -> list[dict]:
    """The request's `input` as Responses items, each with an id (what input_items lists)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    items: list[dict] = []
    for raw in value:
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                text_type = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": text_type, "text": content}]
            item.setdefault("status", "completed")
        if not isinstance(item.get("id"), str):
            item["id"] = gateway_id(ITEM_ID_PREFIXES.get(kind, "item_"))
        items.append(item)
    return items


def _validate(body: dict) -> None:
    items = body.get("input")
    if items is not None and not isinstance(items, str | list):
        raise BadRequest("Field 'input' must be a string or an array of items.", param="input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest("Every item of 'input' must be an object.", param="input")
            kind = item.get("type")
            if kind is not None and not isinstance(kind, str):  # it picks a stored id's prefix
                raise BadRequest(f"'input[{i}].type' must be a string.", param=f"input[{i}].type")
    for key in ("stream", "store"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise BadRequest(f"Field '{key}' must be a boolean.", param=key)
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise BadRequest(
            "Field 'previous_response_id' must be a response id.", param="previous_response_id"
        )
    if body.get("background") is True:
        raise BadRequest(
            "Background responses are not supported by this gateway; send the request without "
            "'background' and keep the connection open (stream: true shows progress).",
            param="background",
        )


# --- the tap that stores what the client receives --------------------------------------------


class StoreTap:
    """Sees the client's answer (after translation): fixes the echoed previous_response_id and,
    with `keep`, stores the response before its id reaches the client."""

    def __init__(
        self,
        api: ResponsesAPI,
        body: dict,
        input_items: list[dict],
        previous_id: str | None,
        keep: bool,
    ) -> None:
        self.api = api
        self.model = body.get("model") or ""
        instructions = body.get("instructions")
        self.instructions = instructions if isinstance(instructions, str) else None
        self.input_items = input_items
        self.previous_id = previous_id
        self.keep = keep
        self.upstream_keeps_state = body.get("store") is not False

    def patch(self, response: dict) -> bool:
        """Make the Response object say what the client asked for; True if it changed."""
        if (
            self.previous_id is not None
            and response.get("previous_response_id") != self.previous_id
        ):
            response["previous_response_id"] = self.previous_id
            return True
        return False

    def record(self, ctx: RequestContext, response: dict, items: list[dict]) -> StoredResponse:
        native = self.api.native(ctx.provider)
        output = response.get("output")
        return StoredResponse(
            id=response["id"],
            created_at=int(response.get("created_at") or time.time()),
            model=str(response.get("model") or self.model),
            input_items=self.input_items,
            instructions=self.instructions,
            response=response,
            output_items=output if isinstance(output, list) and output else items,
            previous_response_id=self.previous_id,
            provider=ctx.provider or None,
            key_name=ctx.attempts[-1].key_name if ctx.attempts else None,
            upstream_response_id=response["id"] if native and self.upstream_keeps_state else None,
            owner=self.api.owner_of(ctx),
        )

    async def body(self, ctx: RequestContext, raw: bytes) -> bytes:
        try:
            response = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return raw
        changed = self.patch(response)
        if self.keep:
            try:
                await self.api.put(self.record(ctx, response, []))
            except ResponseStoreError as exc:
                log.warning("storing response %s failed: %s", response["id"], exc)
                raise StoreUnavailable(
                    "The answer could not be stored; retry, or send store: false."
                ) from None
        return orjson.dumps(response) if changed else raw

    def stream(self, resp: StreamSink, ctx: RequestContext) -> StreamSink:
        return StoringStream(self, resp, ctx)


class StoringStream:
    """Relays a Responses event stream event by event, storing at created and at the end."""

    def __init__(self, tap: StoreTap, resp: StreamSink, ctx: RequestContext) -> None:
        self.tap = tap
        self.resp = resp
        self.ctx = ctx
        self.parser = SSEParser()
        self.response: dict | None = None  # latest lifecycle snapshot
        self.items: dict[int, dict] = {}  # finished output items by output_index
        self.stored_final = False
        self.broken = False

    def send_now(self, data: bytes) -> Awaitable[None]:
        return self.write(data)  # storing may have to wait: always awaited

    async def write(self, data: bytes) -> None:
        if self.broken:
            return
        out = b""
        for event in self.parser.feed(data):
            frame = await self._event(event)
            if self.broken:
                await self.resp.write(out + frame)
                return
            out += frame
        if out:
            await self.resp.write(out)

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            await self.write(data)
        out = b""
        if not self.broken:
            for event in self.parser.flush():
                out += await self._event(event)
        if out:
            await self.resp.write(out)
        if self.response is not None and not self.stored_final and not self.broken:
            self.response["status"] = "failed"
            if not self.response.get("error"):
                self.response["error"] = {
                    "code": "server_error",
                    "message": "the stream ended before the response was complete",
                }
            await self._store(final=True)
        await self.resp.write_eof()

    async def _event(self, event: SSEEvent) -> bytes:
        kind = event.event or _type_of(event.data)
        if kind is None or kind not in LIFECYCLE_EVENTS and kind != "response.output_item.done":
            return encode_event(event.data.encode(), kind)
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return encode_event(event.data.encode(), kind)
        if kind == "response.output_item.done":
            if isinstance(payload.get("output_index"), int) and isinstance(
                payload.get("item"), dict
            ):
                self.items[payload["output_index"]] = payload["item"]
            return encode_event(event.data.encode(), kind)
        response = payload.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return encode_event(event.data.encode(), kind)
        changed = self.tap.patch(response)
        first = self.response is None
        self.response = response
        if first or kind in FINAL_EVENTS:
            stored = await self._store(final=kind in FINAL_EVENTS)
            if not stored and first:
                self.broken = True
                message = "The response could not be stored; retry, or send store: false."
                seq = payload.get("sequence_number")
                return stream_error_event(
                    DIALECT,
                    503,
                    message,
                    response=response,
                    sequence_number=seq if isinstance(seq, int) else 0,
                )
        data = orjson.dumps(payload) if changed else event.data.encode()
        return encode_event(data, kind)

    async def _store(self, final: bool) -> bool:
        if final:
            self.stored_final = True
        if not self.tap.keep or self.response is None:
            return True
        items = [self.items[i] for i in sorted(self.items)]
        try:
            await self.tap.api.put(self.tap.record(self.ctx, self.response, items))
        except ResponseStoreError as exc:
            log.warning("storing response %s failed: %s", self.response.get("id"), exc)
            return False
        return True


# --- the endpoints ---------------------------------------------------------------------------


class ResponsesAPI:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        # Validated with the rest of the config; absent means the default SQLite file.
        self.config = gw.config.responses_store or ResponsesStoreConfig()
        self._store: ResponseStore | None = None
        self._opening = asyncio.Lock()

    def routes(self) -> dict[str, dict[str, object]]:
        return {
            ENDPOINT: {"POST": self.create},
            ENDPOINT + "/{id}": {"GET": self.retrieve, "DELETE": self.delete},
            ENDPOINT + "/{id}/input_items": {"GET": self.input_items},
            ENDPOINT + "/{id}/cancel": {"POST": self.cancel},
        }

    # --- the store ---------------------------------------------------------------------------

    async def start(self) -> None:
        """A configured store opens at start-up (and fails it); the default one on first use."""
        if self.gw.config.responses_store is not None:
            await self.store()

    @property
    def reachable(self) -> bool:
        """False while the configured store's backend (Redis) is down; for /readyz."""
        return self._store is None or self._store.reachable

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def store(self) -> ResponseStore:
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    try:
                        self._store = await open_store(self.config)
                    except OSError as exc:  # e.g. the SQLite file's folder is not writable
                        raise ResponseStoreUnavailableError(str(exc)) from exc
        return self._store

    async def put(self, record: StoredResponse) -> None:
        await (await self.store()).put(record.id, record)

    def owner_of(self, ctx: RequestContext) -> Owner:
        """Whose stored responses this request may see and stores: its gateway token's owner
        fingerprint, stable when tokens are removed or reordered (None without tokens). Hook
        for admin tokens (a later issue): return EVERY_OWNER for them."""
        return self.gw.auth.owner(ctx.token_name)

    async def _get(self, response_id: str, owner: Owner) -> StoredResponse:
        try:
            record = await (await self.store()).get_visible(response_id, owner)
        except ResponseStoreError as exc:
            raise _store_down(exc) from None
        if record is None:
            raise _not_found(response_id)
        return record

    def native(self, provider: str | None) -> bool:
        adapter = self.gw.router.adapters.get(provider or "")
        return adapter is not None and adapter.dialect == DIALECT

    # --- POST /v1/responses ------------------------------------------------------------------

    async def create(self, request: Request) -> StreamResponse:
        gw = self.gw
        ctx = RequestContext.new(ENDPOINT, DIALECT)
        try:
            body, route = await accept_model_request(gw, request, ctx, _validate)
            ctx.stream = body.get("stream") is True
            response = await self._create(request, ctx, route, body)
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(DIALECT, err, ctx)
        except Exception as exc:
            if stream_started(ctx):
                raise
            response = internal_error(DIALECT, ctx, exc)
        gw.record(ctx)
        return response

    async def _create(
        self, request: Request, ctx: RequestContext, route: Route, body: dict
    ) -> StreamResponse:
        keep = body.get("store") is not False
        previous_id = body.get("previous_response_id")
        if (keep or previous_id) and not self.reachable:  # say so before spending quota
            raise StoreUnavailable(
                "The response store is unreachable; the gateway is reconnecting in the "
                "background (its log says where the store is). Retry later, or "
                "send store: false without previous_response_id for an answer that is not stored."
            )
        chain = await self._conversation(previous_id, self.owner_of(ctx)) if previous_id else []
        # Clients that keep their own history (store false, no previous id) pay for nothing here.
        own_items = normalize_input(body.get("input")) if keep or chain else []
        tap = StoreTap(self, body, own_items, previous_id, keep) if keep or previous_id else None
        op = Operation(DIALECT, tap=tap)
        run = self.gw.dispatcher.run
        if chain:
            pinned = self._pinned_route(route, chain[-1])
            if pinned is not None:
                same = {**body, "previous_response_id": chain[-1].upstream_response_id}
                try:
                    response = await run(request, ctx, op, pinned, same, ctx.stream, {})
                except (UpstreamUnavailable, AllRateLimited) as exc:
                    log.info("previous upstream unavailable, sending the conversation: %s", exc)
                else:
                    if not _lost_state(response):
                        return response
                ctx.error_type = ctx.error_message = None  # the fallback below answers instead
            body = {k: v for k, v in body.items() if k != "previous_response_id"}
            body["input"] = _history(chain) + own_items
        return await run(request, ctx, op, route, body, ctx.stream, {})

    async def _conversation(self, previous_id: str, owner: Owner) -> list[StoredResponse]:
        try:
            return await (await self.store()).conversation(previous_id, owner=owner)
        except ResponseNotFoundError as exc:
            via = (
                ""
                if exc.response_id == previous_id
                else f" (its ancestor '{exc.response_id}' is gone)"
            )
            raise BadRequest(
                f"Previous response with id '{previous_id}' not found{via}.",
                param="previous_response_id",
                code="previous_response_not_found",
            ) from None
        except ConversationError as exc:
            raise BadRequest(str(exc), param="previous_response_id") from None
        except ResponseStoreError as exc:
            raise _store_down(exc) from None

    def _pinned_route(self, route: Route, last: StoredResponse) -> Route | None:
        """The route narrowed to the upstream (provider and key) holding `last`'s state."""
        if not last.upstream_response_id or not self.native(last.provider):
            return None
        for target in route.targets:
            if target.provider != last.provider:
                continue
            keys = [k for k in target.keys if k.name == last.key_name]
            if keys:
                return Route(route.name, route.strategy, [_with_keys(target, keys)])
        return None

    # --- GET / DELETE / input_items / cancel -------------------------------------------------

    async def retrieve(self, request: Request) -> Response:
        async def answer(ctx: RequestContext) -> Response:
            if request.query.get("stream") in ("true", "1"):
                raise BadRequest(
                    "Streaming a stored response again is not supported by this gateway; "
                    "retrieve it without 'stream'.",
                    param="stream",
                )
            record = await self._get(request.match_info["id"], self.owner_of(ctx))
            return _json(record.response)

        return await self._serve(request, "/v1/responses/{id}", answer)

    async def delete(self, request: Request) -> Response:
        async def answer(ctx: RequestContext) -> Response:
            response_id = request.match_info["id"]
            try:
                deleted = await (await self.store()).delete_visible(response_id, self.owner_of(ctx))
            except ResponseStoreError as exc:
                raise _store_down(exc) from None
            if not deleted:
                raise _not_found(response_id)
            return _json({"id": response_id, "object": "response.deleted", "deleted": True})

        return await self._serve(request, "/v1/responses/{id}", answer)

    async def input_items(self, request: Request) -> Response:
        async def answer(ctx: RequestContext) -> Response:
            record = await self._get(request.match_info["id"], self.owner_of(ctx))
            return _json(list_page(record.input_items, request.query))

        return await self._serve(request, "/v1/responses/{id}/input_items", answer)

    async def cancel(self, request: Request) -> Response:
        async def answer(ctx: RequestContext) -> Response:
            response_id = request.match_info["id"]
            await self._get(response_id, self.owner_of(ctx))
            raise BadRequest(
                f"Response '{response_id}' cannot be cancelled: only background responses can "
                "be, and this gateway does not run background responses.",
                code="not_cancellable",
            )

        return await self._serve(request, "/v1/responses/{id}/cancel", answer)

    async def _serve(self, request: Request, endpoint: str, answer) -> Response:
        ctx = RequestContext.new(endpoint, DIALECT)
        try:
            ctx.token_name = self.gw.auth.check(request)
            response = await answer(ctx)
            response.headers["x-request-id"] = ctx.request_id
            ctx.status = response.status
        except GatewayError as err:
            response = error_response(DIALECT, err, ctx)
        self.gw.record(ctx)
        return response


def _not_found(response_id: str) -> NotFound:
    """What an unknown id, an expired one and another token's one all get."""
    return NotFound(
        f"Response with id '{response_id}' not found.",
        error_type="invalid_request_error",
        param="response_id",
    )


def _type_of(data: str) -> str | None:
    """The `type` of an event sent without an `event:` line (read only when it may matter)."""
    if '"response.' not in data:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    kind = payload.get("type") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) else None


def _lost_state(response: StreamResponse) -> bool:
    """The upstream answered that it no longer has the previous response (expired, other org)."""
    if response.status not in (400, 404) or not isinstance(response, Response):
        return False
    body = response.body
    return isinstance(body, bytes) and b"previous_response" in body


def _history(chain: list[StoredResponse]) -> list[dict]:
    items: list[dict] = []
    for record in chain:
        items.extend(record.input_items)
        items.extend(record.output_items)
    return items


def _with_keys(target: Target, keys: list[ApiKey]) -> Target:
    return replace(target, keys=keys)


def list_page(items: list[dict], query) -> dict:
    """One page of `items` in OpenAI's list shape (`limit`, `order`, `after`, `before`)."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise BadRequest("'limit' must be an integer between 1 and 100.", param="limit") from None
    if not 1 <= limit <= 100:
        raise BadRequest("'limit' must be an integer between 1 and 100.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else list(reversed(items))
    ids = [item.get("id") for item in ordered]
    start, end = 0, len(ordered)
    for param in ("after", "before"):
        cursor = query.get(param)
        if cursor is None:
            continue
        if cursor not in ids:
            raise BadRequest(f"No input item with id '{cursor}' in this response.", param=param)
        if param == "after":
            start = ids.index(cursor) + 1
        else:
            end = ids.index(cursor)
    window = ordered[start:end]
    page = window[:limit] if "before" not in query or "after" in query else window[-limit:]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(window) > len(page),
    }


def _json(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=orjson.dumps(value), content_type="application/json")
