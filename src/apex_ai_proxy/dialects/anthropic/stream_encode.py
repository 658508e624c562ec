"""Neutral stream events -> Anthropic SSE events for a client."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

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
from apex_ai_proxy.errors import stream_error_event
from apex_ai_proxy.sse import encode_event


@dataclass(slots=True)
class _Call:
    """A tool call not yet sent whole: its block, argument fragments not yet sent, and whether
    it has ended (no fragment can follow)."""

    block: dict
    fragments: list[str] = field(default_factory=list)
    ended: bool = False


class AnthropicStreamEncoder(StreamEncoder):
    """Content blocks never overlap: a new kind of content closes the open block first.

    A tool call streams live (its block opened at once, each argument fragment sent as it
    comes) when no other tool block is open. While one is, every other call, and any text or
    thinking, is held in arrival order: upstreams may interleave the fragments of parallel
    calls, and a tool block closed too early could not take the rest. When the open call ends
    (ToolCallEnd) its block closes and the held content follows in order: an ended call as one
    whole block (its fragments joined into one delta), text and thinking as their own blocks;
    the first call that has not ended goes live with its held fragments joined, and holding
    resumes behind it. Stop and finish end every call and send everything held."""

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.started = False
        self.done = False
        self.index = -1
        self.open: str | None = None  # "text" | "thinking" | "redacted" | "tool"
        self.live: _Call | None = None  # the call whose block is open
        self.calls: dict[int, _Call] = {}  # calls that may still get fragments, by index
        self.held: deque[_Call | TextDelta | ReasoningDelta] = deque()  # behind the live call
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
        self.live = None
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
        if isinstance(ev, (TextDelta, ReasoningDelta)) and self.live is not None:
            self.held.append(ev)
            return b""
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            out = b"" if self.open == "text" else self._open("text", {"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": ev.text})
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            return self._tool_start(ev)
        if isinstance(ev, ToolCallDelta):
            call = self.calls.get(ev.index)
            if call is None or not ev.arguments:
                return b""
            if call is self.live:
                return self._arguments(ev.arguments)
            call.fragments.append(ev.arguments)
            return b""
        if isinstance(ev, ToolCallEnd):
            return self._tool_end(ev.index)
        if isinstance(ev, Stop):
            self.stop_reason = NEUTRAL_TO_STOP.get(ev.reason, "end_turn")
            self.stop_sequence = ev.stop_sequence
            return self._flush()
        return b""

    def _tool_start(self, ev: ToolCallStart) -> bytes:
        block = {
            "type": "tool_use",
            "id": ev.id,
            "name": self.req.tool_names.to_client(ev.name),
            "input": {},
        }
        out = self._tool_end(ev.index)  # a reused index: the earlier call is complete
        call = _Call(block)
        self.calls[ev.index] = call
        if self.live is None:
            return out + self._go_live(call)
        self.held.append(call)
        return out

    def _tool_end(self, index: int) -> bytes:
        call = self.calls.pop(index, None)
        if call is None:
            return b""
        call.ended = True
        if call is not self.live:
            return b""  # held: sent whole when its turn comes
        return self._close() + self._release()

    def _go_live(self, call: _Call) -> bytes:
        out = self._open("tool", call.block)
        self.live = call
        if call.fragments:
            out += self._arguments("".join(call.fragments))
            call.fragments.clear()
        if call.ended:
            out += self._close()
        return out

    def _arguments(self, text: str) -> bytes:
        return self._delta({"type": "input_json_delta", "partial_json": text})

    def _release(self) -> bytes:
        """What was held behind the closed tool block, in order, up to the next call that has
        not ended: that one goes live and the rest stays held behind it."""
        out = b""
        while self.held and self.live is None:
            item = self.held.popleft()
            out += self._go_live(item) if isinstance(item, _Call) else self._content(item)
        return out

    def _flush(self) -> bytes:
        """The stream stops: every call has ended; close the open block, send all held."""
        for call in self.calls.values():
            call.ended = True
        self.calls.clear()
        return self._close() + self._release() + self._close()

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
        return stream_error_event("anthropic", status, message)

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = b"" if self.started else self._message_start()
        out += self._flush()
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        out += self._frame(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": encode_usage(self.usage)},
        )
        return out + self._frame("message_stop", {"type": "message_stop"})
