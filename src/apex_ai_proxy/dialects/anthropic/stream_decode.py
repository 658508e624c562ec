"""An Anthropic upstream's SSE events -> neutral stream events."""

from __future__ import annotations

import orjson

from apex_ai_proxy.dialects.anthropic.response import STOP_TO_NEUTRAL, decode_usage, encode_usage
from apex_ai_proxy.dialects.base import NOT_AN_OBJECT, TRUNCATED, StreamDecoder, new_id, text_field
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
    Usage,
    UsageEvent,
)
from apex_ai_proxy.errors import UpstreamInvalid
from apex_ai_proxy.sse import SSEEvent

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.blocks: dict[
            int, int | None
        ] = {}  # block index -> neutral tool index (None: not a tool)
        self.tools = 0
        self.usage: Usage | None = None
        self.stopped = False

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data:
            return []
        try:
            data = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            raise UpstreamInvalid(NOT_AN_OBJECT)
        kind = data.get("type") or ev.event
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler else []

    def _on_message_start(self, data: dict) -> list[NeutralEvent]:
        message = data.get("message") or {}
        out: list[NeutralEvent] = [
            Start(message.get("id") or new_id("msg_"), message.get("model") or "")
        ]
        self.usage = decode_usage(message.get("usage"))
        if self.usage is not None:
            out.append(UsageEvent(self.usage))
        return out

    def _on_content_block_start(self, data: dict) -> list[NeutralEvent]:
        block = data.get("content_block") or {}
        index = _index(data, len(self.blocks))
        kind = block.get("type")
        self.blocks[index] = None
        if kind == "tool_use":
            self.blocks[index] = self.tools
            self.tools += 1
            call_id = text_field(block.get("id")) or new_id("toolu_")
            return [ToolCallStart(self.blocks[index], call_id, text_field(block.get("name")))]
        if kind == "redacted_thinking":
            return [ReasoningDelta(redacted=text_field(block.get("data")) or None)]
        if kind == "text" and text_field(block.get("text")):
            return [TextDelta(block["text"])]
        if kind == "thinking" and text_field(block.get("thinking")):
            return [ReasoningDelta(block["thinking"])]
        return []

    def _on_content_block_delta(self, data: dict) -> list[NeutralEvent]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(text_field(delta.get("text")))]
        if kind == "thinking_delta":
            return [ReasoningDelta(text_field(delta.get("thinking")))]
        if kind == "signature_delta":
            return [ReasoningDelta(signature=text_field(delta.get("signature")) or None)]
        if kind == "input_json_delta":
            tool = self.blocks.get(_index(data, -1))
            if tool is not None and text_field(delta.get("partial_json")):
                return [ToolCallDelta(tool, delta["partial_json"])]
        return []

    def _on_content_block_stop(self, data: dict) -> list[NeutralEvent]:
        tool = self.blocks.get(_index(data, -1))
        return [ToolCallEnd(tool)] if tool is not None else []

    def _on_message_delta(self, data: dict) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        usage = data.get("usage")
        if isinstance(usage, dict):
            merged = dict(usage)
            if self.usage is not None and merged.get("input_tokens") is None:
                previous = encode_usage(self.usage)
                for key in (
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                ):
                    merged.setdefault(key, previous[key])
            self.usage = decode_usage(merged)
            if self.usage is not None:
                out.append(UsageEvent(self.usage))
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self.stopped = True
            out.append(
                Stop(STOP_TO_NEUTRAL.get(delta["stop_reason"], "stop"), delta.get("stop_sequence"))
            )
        return out

    def _on_message_stop(self, data: dict) -> list[NeutralEvent]:
        if self.stopped:
            return []
        self.stopped = True
        return [Stop("stop")]

    def _on_error(self, data: dict) -> list[NeutralEvent]:
        error = data.get("error") or {}
        self.stopped = True
        return [
            ErrorEvent(
                ERROR_STATUS.get(error.get("type"), 500),
                str(error.get("message") or "upstream error"),
            )
        ]

    def finish(self) -> list[NeutralEvent]:
        return [] if self.stopped else [ErrorEvent(502, TRUNCATED)]


def _index(data: dict, default: int) -> int:
    """The event's block index; `default` when it is absent or not a whole number."""
    index = data.get("index")
    return index if type(index) is int else default
