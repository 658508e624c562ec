"""A Gemini upstream's streamGenerateContent chunks -> neutral stream events."""

from __future__ import annotations

import orjson

from apex_ai_proxy.dialects.base import (
    NOT_AN_OBJECT,
    TRUNCATED,
    StreamDecoder,
    json_text,
    new_id,
    text_field,
)
from apex_ai_proxy.dialects.gemini.response import decode_usage, stop_reason_of
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
from apex_ai_proxy.errors import UpstreamInvalid
from apex_ai_proxy.sse import SSEEvent


class GeminiStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls = 0

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data:
            return []
        try:
            chunk = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if isinstance(chunk, list) and chunk:
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            raise UpstreamInvalid(NOT_AN_OBJECT)
        if isinstance(chunk.get("error"), dict):
            self.stopped = True
            error = chunk["error"]
            code = error.get("code")
            return [
                ErrorEvent(
                    code if isinstance(code, int) else 500,
                    str(error.get("message") or "upstream error"),
                )
            ]
        out: list[NeutralEvent] = []
        if not self.started:
            self.started = True
            out.append(
                Start(chunk.get("responseId") or new_id("gen-"), chunk.get("modelVersion") or "")
            )
        candidates = chunk.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(part, dict):
                self._part(part, out)
        usage = decode_usage(chunk.get("usageMetadata"))
        if usage is not None:
            out.append(UsageEvent(usage))
        finish = candidate.get("finishReason")
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            finish = "SAFETY"
        if finish:
            self.stopped = True
            out.append(Stop(stop_reason_of(finish, self.calls > 0)))
        return out

    def _part(self, part: dict, out: list[NeutralEvent]) -> None:
        signature = text_field(part.get("thoughtSignature")) or None
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = self.calls
            self.calls += 1
            call_id = text_field(call.get("id")) or new_id("call_")
            out.append(ToolCallStart(index, call_id, text_field(call.get("name")), signature))
            arguments = json_text(call.get("args") or {})
            if arguments != "{}":
                out.append(ToolCallDelta(index, arguments))
            out.append(ToolCallEnd(index))
        elif part.get("thought"):
            if text := text_field(part.get("text")):
                out.append(ReasoningDelta(text))
            if signature:
                out.append(ReasoningDelta(signature=signature))
        elif text := text_field(part.get("text")):
            out.append(TextDelta(text))

    def finish(self) -> list[NeutralEvent]:
        return [] if self.stopped else [ErrorEvent(502, TRUNCATED)]
