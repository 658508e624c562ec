"""The tap that stores what the client receives, as it receives it.

With `store` (default true) the response is written under its id before the id reaches the
client: a non-streamed answer before it is sent; a stream when `response.created` passes
(status in_progress), again when it ends (completed / incomplete / failed). `store: false`
keeps nothing. Records name the upstream by provider and key *name*, never a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import StoreUnavailable, stream_error_event
from apex_ai_proxy.relay import StreamSink
from apex_ai_proxy.sse import SSEEvent, SSEParser, encode_event
from apex_ai_proxy.state.responses_store import ResponseStoreError, StoredResponse

from .store import DIALECT, ConversationStore

log = logging.getLogger("apex_ai_proxy.responses")

FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
LIFECYCLE_EVENTS = FINAL_EVENTS | {"response.created", "response.in_progress", "response.queued"}


class StoreTap:
    """Sees the client's answer (after translation): fixes the echoed previous_response_id and,
    with `keep`, stores the response before its id reaches the client."""

    def __init__(
        self,
        store: ConversationStore,
        body: dict,
        input_items: list[dict],
        previous_id: str | None,
        keep: bool,
    ) -> None:
        self.store = store
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
        native = self.store.native(ctx.provider)
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
            owner=self.store.owner_of(ctx),
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
                await self.store.put(self.record(ctx, response, []))
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
            await self.tap.store.put(self.tap.record(self.ctx, self.response, items))
        except ResponseStoreError as exc:
            log.warning("storing response %s failed: %s", self.response.get("id"), exc)
            return False
        return True


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
