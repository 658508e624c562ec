"""An OpenAI-compatible upstream's chunks -> neutral stream events."""

from __future__ import annotations

from typing import Any

import orjson

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
    UsageEvent,
)
from apex_ai_proxy.dialects.openai_chat.response import FINISH_TO_NEUTRAL, decode_usage
from apex_ai_proxy.errors import UpstreamInvalid
from apex_ai_proxy.sse import SSEEvent

_PLAIN_DELTA = frozenset({"role", "content"})


class OpenAIChatStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls: dict[int, tuple[int, str]] = {}  # upstream index -> (neutral index, id)
        self.open: list[int] = []
        self.count = 0

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data or ev.data.startswith("[DONE]"):
            return []
        try:
            chunk = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            raise UpstreamInvalid(NOT_AN_OBJECT)
        if chunk.get("error"):
            return [_error_event(chunk["error"])]
        out: list[NeutralEvent] = []
        if not self.started:
            self.started = True
            out.append(
                Start(
                    text_field(chunk.get("id")) or new_id("chatcmpl-"),
                    text_field(chunk.get("model")),
                    chunk.get("created") if type(chunk.get("created")) is int else None,
                )
            )
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        usage = decode_usage(chunk.get("usage"))
        if usage is not None:
            out.append(UsageEvent(usage))
        return out

    def _choice(self, choice: dict, out: list[NeutralEvent]) -> None:
        delta = choice.get("delta") or {}
        if delta.keys() <= _PLAIN_DELTA:  # most chunks: a piece of text and nothing else
            content = delta.get("content")
            if content and isinstance(content, str):
                out.append(TextDelta(content))
        else:
            self._rich_delta(delta, out)
        finish = choice.get("finish_reason")
        if finish:
            out += [ToolCallEnd(i) for i in self.open]
            self.open = []
            reason = FINISH_TO_NEUTRAL.get(finish, "stop")
            if reason == "stop" and self.count:
                reason = "tool_calls"
            self.stopped = True
            out.append(Stop(reason))

    def _rich_delta(self, delta: dict, out: list[NeutralEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning") if isinstance(delta.get("reasoning"), str) else None
        if reasoning:
            out.append(ReasoningDelta(reasoning))
        if isinstance(delta.get("reasoning_signature"), str):
            out.append(ReasoningDelta(signature=delta["reasoning_signature"]))
        for detail in delta.get("reasoning_details") or []:
            if isinstance(detail, dict) and detail.get("type") == "reasoning.encrypted":
                out.append(ReasoningDelta(redacted=detail.get("data")))
        if isinstance(delta.get("content"), str) and delta["content"]:
            out.append(TextDelta(delta["content"]))
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            out.append(TextDelta(delta["refusal"]))
        for position, call in enumerate(delta.get("tool_calls") or []):
            if isinstance(call, dict):
                self._tool_call(call, position, out)

    def _tool_call(self, call: dict, position: int, out: list[NeutralEvent]) -> None:
        upstream = call.get("index", position)
        if type(upstream) is not int:  # a list or an object here would be no index at all
            upstream = position
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        given_id = text_field(call.get("id"))
        known = self.calls.get(upstream)
        # Some hosts repeat index 0 for parallel calls: a new id means a new call.
        if known is None or (given_id and given_id != known[1]):
            index = self.count
            self.count += 1
            call_id = given_id or new_id("call_")
            self.calls[upstream] = (index, call_id)
            self.open.append(index)
            extra = call.get("extra_content")
            google = extra.get("google") if isinstance(extra, dict) else None
            signature = google.get("thought_signature") if isinstance(google, dict) else None
            out.append(
                ToolCallStart(
                    index, call_id, text_field(function.get("name")), text_field(signature) or None
                )
            )
        else:
            index = known[0]
        arguments = function.get("arguments")
        if arguments:
            out.append(
                ToolCallDelta(
                    index,
                    arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
                )
            )

    def finish(self) -> list[NeutralEvent]:
        if self.stopped:
            return []
        out: list[NeutralEvent] = [ToolCallEnd(i) for i in self.open]
        self.open = []
        return out + [ErrorEvent(502, TRUNCATED)]


def _error_event(error: Any) -> ErrorEvent:
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return ErrorEvent(status, str(error.get("message") or "upstream error"))
    return ErrorEvent(500, str(error))
