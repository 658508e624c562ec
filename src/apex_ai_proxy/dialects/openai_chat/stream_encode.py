"""Neutral stream events -> Chat Completions chunks for a client."""

from __future__ import annotations

import time
from typing import Any

from apex_ai_proxy.dialects.base import StreamEncoder, dumps, new_id
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    NeutralEvent,
    NeutralRequest,
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
from apex_ai_proxy.dialects.openai_chat.response import NEUTRAL_TO_FINISH, encode_usage
from apex_ai_proxy.errors import stream_error_event
from apex_ai_proxy.sse import encode_event


class OpenAIChatStreamEncoder(StreamEncoder):
    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.created = 0
        self.started = False
        self.done = False
        self.usage: Usage | None = None
        self.arguments_sent: set[int] = set()
        self.reasoning_text = ""  # of the reasoning block still open, for its details entry
        self.reasoning_blocks = 0  # `index` of the next reasoning_details entry

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_event(dumps(self._envelope([choice])))

    def _envelope(self, choices: list) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def _start(self, ev: Start | None = None) -> bytes:
        self.started = True
        self.id = (ev.id if ev else None) or new_id("chatcmpl-")
        self.model = (ev.model if ev else None) or self.req.model
        self.created = (ev.created if ev else None) or int(time.time())
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            return b"" if self.started else self._start(ev)
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        if isinstance(ev, UsageEvent):
            self.usage = ev.usage
            return b""
        head = b"" if self.started else self._start()
        return head + self._body(ev)

    def _body(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            return self._chunk({"content": ev.text}) if ev.text else b""
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        self.reasoning_text = ""
        if isinstance(ev, ToolCallStart):
            call: dict[str, Any] = {
                "index": ev.index,
                "id": ev.id,
                "type": "function",
                "function": {"name": self.req.tool_names.to_client(ev.name), "arguments": ""},
            }
            if ev.signature:
                call["extra_content"] = {"google": {"thought_signature": ev.signature}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(ev, ToolCallDelta):
            if not ev.arguments:
                return b""
            self.arguments_sent.add(ev.index)
            return self._chunk(
                {"tool_calls": [{"index": ev.index, "function": {"arguments": ev.arguments}}]}
            )
        if isinstance(ev, ToolCallEnd):
            if ev.index in self.arguments_sent:
                return b""
            # A call without arguments still carries "{}" so clients parse valid JSON.
            self.arguments_sent.add(ev.index)
            return self._chunk(
                {"tool_calls": [{"index": ev.index, "function": {"arguments": "{}"}}]}
            )
        if isinstance(ev, Stop):
            return self._chunk({}, NEUTRAL_TO_FINISH.get(ev.reason, "stop"))
        return b""

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        """Text as `reasoning_content`; a block closed by a signature, or a redacted block, also
        as one indexed `reasoning_details` entry, so clients merging deltas keep blocks apart."""
        delta: dict[str, Any] = {}
        details: list[dict] = []
        if ev.text:
            delta["reasoning_content"] = ev.text
            self.reasoning_text += ev.text
        if ev.signature:
            delta["reasoning_signature"] = ev.signature
            text, self.reasoning_text = self.reasoning_text, ""
            details.append({"type": "reasoning.text", "text": text, "signature": ev.signature})
        if ev.redacted:
            details.append({"type": "reasoning.encrypted", "data": ev.redacted})
        for detail in details:
            detail["index"] = self.reasoning_blocks
            self.reasoning_blocks += 1
        if details:
            delta["reasoning_details"] = details
        return self._chunk(delta) if delta else b""

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        return stream_error_event("openai_chat", status, message)

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = b""
        if self.req.stream_include_usage and self.usage is not None:
            usage_chunk = self._envelope([])
            usage_chunk["usage"] = encode_usage(self.usage)
            out += encode_event(dumps(usage_chunk))
        return out + b"data: [DONE]\n\n"
