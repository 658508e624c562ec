"""Neutral stream events -> Anthropic SSE events for a client."""

from __future__ import annotations

from apex_ai_proxy.dialects.anthropic.response import NEUTRAL_TO_STOP, encode_usage
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
from apex_ai_proxy.errors import anthropic_error_type
from apex_ai_proxy.sse import encode_event


class AnthropicStreamEncoder(StreamEncoder):
    """Content blocks never overlap: a new kind of content closes the open block first.

    A tool call is sent as one whole block (start, its arguments, stop) when it ends or the
    stream stops, its argument fragments held until then: upstreams may interleave the
    fragments of parallel calls, and a closed Anthropic block cannot take more. Text and
    thinking are not held back."""

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.started = False
        self.done = False
        self.index = -1
        self.open: str | None = None  # "text" | "thinking" | "tool"
        self.calls: dict[int, tuple[dict, list[str]]] = {}  # unfinished: block, fragments
        self.signed = False
        self.usage: Usage | None = None
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None

    def _frame(self, event: str, data: dict) -> bytes:
        return encode_event(dumps(data), event)

    def _message_start(self) -> bytes:
        self.started = True
        usage = encode_usage(self.usage)
        message = {
            "id": self.id or new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": usage["output_tokens"] or 1},
        }
        return self._frame("message_start", {"type": "message_start", "message": message})

    def _open(self, kind: str, block: dict) -> bytes:
        out = self._close()
        self.index += 1
        self.open = kind
        self.signed = False
        return out + self._frame(
            "content_block_start",
            {"type": "content_block_start", "index": self.index, "content_block": block},
        )

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return self._frame(
            "content_block_stop", {"type": "content_block_stop", "index": self.index}
        )

    def _delta(self, delta: dict) -> bytes:
        return self._frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            self.id = self.id or ev.id
            self.model = ev.model or self.model
            return b""
        if isinstance(ev, UsageEvent):
            self.usage = ev.usage
            return b""
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        head = b"" if self.started else self._message_start()
        return head + self._content(ev)

    def _content(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            out = b"" if self.open == "text" else self._open("text", {"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": ev.text})
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            block = {
                "type": "tool_use",
                "id": ev.id,
                "name": self.req.tool_names.to_client(ev.name),
                "input": {},
            }
            out = self._tool_block(ev.index)  # a reused index: the earlier call is complete
            self.calls[ev.index] = (block, [])
            return out
        if isinstance(ev, ToolCallDelta):
            call = self.calls.get(ev.index)
            if call is not None and ev.arguments:
                call[1].append(ev.arguments)
            return b""
        if isinstance(ev, ToolCallEnd):
            return self._tool_block(ev.index)
        if isinstance(ev, Stop):
            self.stop_reason = NEUTRAL_TO_STOP.get(ev.reason, "end_turn")
            self.stop_sequence = ev.stop_sequence
            return self._tool_blocks() + self._close()
        return b""

    def _tool_block(self, index: int) -> bytes:
        call = self.calls.pop(index, None)
        if call is None:
            return b""
        block, fragments = call
        out = self._open("tool", block)
        if fragments:
            out += self._delta({"type": "input_json_delta", "partial_json": "".join(fragments)})
        return out + self._close()

    def _tool_blocks(self) -> bytes:
        """The calls still unfinished, in the order they started."""
        return b"".join([self._tool_block(index) for index in list(self.calls)])

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        out = b""
        if ev.redacted:
            out += (
                self._open("redacted", {"type": "redacted_thinking", "data": ev.redacted})
                + self._close()
            )
        if ev.text or ev.signature:
            if self.open != "thinking" or self.signed:
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            if ev.text:
                out += self._delta({"type": "thinking_delta", "thinking": ev.text})
            if ev.signature:
                out += self._delta({"type": "signature_delta", "signature": ev.signature})
                self.signed = True
        return out

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        error = {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message},
        }
        return self._frame("error", error)

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = b"" if self.started else self._message_start()
        out += self._tool_blocks() + self._close()
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        out += self._frame(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": encode_usage(self.usage)},
        )
        return out + self._frame("message_stop", {"type": "message_stop"})
