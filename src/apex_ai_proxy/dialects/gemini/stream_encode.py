"""Neutral stream events -> streamGenerateContent chunks for a client."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import StreamEncoder, dumps, new_id, parse_arguments
from apex_ai_proxy.dialects.gemini.response import (
    NEUTRAL_TO_FINISH,
    call_part,
    client_signature,
    encode_usage,
)
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    NeutralEvent,
    NeutralRequest,
    ReasoningDelta,
    Start,
    Stop,
    StopReason,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from apex_ai_proxy.errors import GEMINI_STATUS_NAMES, stream_error_event
from apex_ai_proxy.sse import encode_event

STATUS_NAMES = GEMINI_STATUS_NAMES  # the old name, re-exported by the package


class GeminiStreamEncoder(StreamEncoder):
    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.done = False
        self.usage: Usage | None = None
        self.reason: StopReason | None = None
        self.calls: dict[int, list] = {}  # index -> [id, name, signature, arguments]

    def _chunk(self, parts: list[dict], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": self.id,
        }
        if finish and self.usage is not None:
            body["usageMetadata"] = encode_usage(self.usage)
        return encode_event(dumps(body))

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            self.id = self.id or ev.id
            self.model = ev.model or self.model
            return b""
        if not self.id:
            self.id = new_id("gen-")
        if isinstance(ev, TextDelta):
            return self._chunk([{"text": ev.text}]) if ev.text else b""
        if isinstance(ev, ReasoningDelta):
            if not (ev.text or ev.signature):
                return b""
            part: dict[str, Any] = {"text": ev.text, "thought": True}
            if ev.signature:
                part["thoughtSignature"] = client_signature(ev.signature)
            return self._chunk([part])
        if isinstance(ev, ToolCallStart):
            self.calls[ev.index] = [ev.id, ev.name, ev.signature, ""]
        elif isinstance(ev, ToolCallDelta) and ev.index in self.calls:
            self.calls[ev.index][3] += ev.arguments
        elif isinstance(ev, ToolCallEnd) and ev.index in self.calls:
            call_id, name, signature, arguments = self.calls.pop(ev.index)
            return self._chunk(
                [call_part(self.req, call_id, name, parse_arguments(arguments), signature)]
            )
        elif isinstance(ev, UsageEvent):
            self.usage = ev.usage
        elif isinstance(ev, Stop):
            self.reason = ev.reason
        elif isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        return b""

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        return stream_error_event("gemini", status, message)

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = b""
        for index in sorted(self.calls):
            out += self.encode(ToolCallEnd(index))
        self.done = True
        return out + self._chunk(
            [{"text": ""}], NEUTRAL_TO_FINISH.get(self.reason or "stop", "STOP")
        )
