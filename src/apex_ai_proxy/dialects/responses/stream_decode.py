"""A Responses upstream's events -> neutral stream events."""

from __future__ import annotations

import orjson

from apex_ai_proxy.dialects.base import NOT_AN_OBJECT, TRUNCATED, StreamDecoder
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    NeutralEvent,
    ReasoningDelta,
    Start,
    Stop,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
)
from apex_ai_proxy.dialects.responses.ids import gateway_id
from apex_ai_proxy.dialects.responses.request_decode import decode_reasoning_item
from apex_ai_proxy.dialects.responses.response_object import decode_usage, stop_reason_of
from apex_ai_proxy.errors import UpstreamInvalid
from apex_ai_proxy.sse import SSEEvent


class ResponsesStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls: dict[str, int] = {}  # item id -> neutral tool-call index
        self.with_arguments: set[int] = set()
        self.reasoning_text: set[str] = set()  # reasoning items whose text was streamed

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data:
            return []
        try:
            data = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            raise UpstreamInvalid(NOT_AN_OBJECT)
        kind = data.get("type") or ev.event or ""
        out: list[NeutralEvent] = []
        if kind == "response.created" or (not self.started and kind.startswith("response.")):
            if not self.started:
                self.started = True
                response = data.get("response") or {}
                out.append(
                    Start(
                        response.get("id") or gateway_id("resp_"),
                        response.get("model") or "",
                        int(response["created_at"]) if response.get("created_at") else None,
                    )
                )
            if kind == "response.created":
                return out
        self._event(kind, data, out)
        return out

    def _event(self, kind: str, data: dict, out: list[NeutralEvent]) -> None:
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            if data.get("delta"):
                out.append(TextDelta(data["delta"]))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if data.get("delta"):
                self.reasoning_text.add(str(data.get("item_id")))
                out.append(ReasoningDelta(data["delta"]))
        elif kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") == "function_call":
                index = len(self.calls)
                self.calls[str(item.get("id") or index)] = index
                call_id = item.get("call_id") or gateway_id("call_")
                out.append(ToolCallStart(index, call_id, item.get("name") or ""))
        elif kind == "response.function_call_arguments.delta":
            index = self.calls.get(str(data.get("item_id")))
            if index is not None and data.get("delta"):
                self.with_arguments.add(index)
                out.append(ToolCallDelta(index, data["delta"]))
        elif kind == "response.output_item.done":
            self._item_done(data.get("item") or {}, out)
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response") or {}
            usage = decode_usage(response.get("usage"))
            if usage is not None:
                out.append(UsageEvent(usage))
            self.stopped = True
            out.append(Stop(stop_reason_of(response, bool(self.calls))))
        elif kind == "response.failed":
            error = (data.get("response") or {}).get("error") or {}
            self.stopped = True
            out.append(ErrorEvent(502, str(error.get("message") or "upstream response failed")))
        elif kind == "error":
            self.stopped = True
            out.append(ErrorEvent(502, str(data.get("message") or "upstream error")))

    def _item_done(self, item: dict, out: list[NeutralEvent]) -> None:
        kind = item.get("type")
        if kind == "function_call":
            index = self.calls.get(str(item.get("id")))
            if index is None:
                return
            if index not in self.with_arguments and item.get("arguments"):
                out.append(ToolCallDelta(index, item["arguments"]))
            out.append(ToolCallEnd(index))
        elif kind == "reasoning":
            part = decode_reasoning_item(item)
            if str(item.get("id")) not in self.reasoning_text and part.text:
                out.append(ReasoningDelta(part.text))
            if part.encrypted_content:
                out.append(ReasoningDelta(encrypted_content=part.encrypted_content))

    def finish(self) -> list[NeutralEvent]:
        if self.stopped:
            return []
        return [ErrorEvent(502, TRUNCATED)]
