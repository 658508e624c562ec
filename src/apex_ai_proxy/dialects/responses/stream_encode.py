"""Neutral stream events -> the Responses event sequence for a client."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from apex_ai_proxy.dialects.base import StreamEncoder, dumps, merge_usage, normalize_arguments
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    NeutralEvent,
    NeutralRequest,
    ReasoningDelta,
    ReasoningPart,
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
from apex_ai_proxy.dialects.responses.ids import gateway_id
from apex_ai_proxy.dialects.responses.reasoning_tokens import call_signature_item, reasoning_token
from apex_ai_proxy.dialects.responses.response_object import (
    INCOMPLETE_REASONS,
    estimated_usage,
    finish_shell,
    response_shell,
    status_of,
)
from apex_ai_proxy.errors import stream_error_event
from apex_ai_proxy.sse import encode_event


@dataclass(slots=True)
class _Item:
    """One output item being streamed."""

    index: int
    body: dict
    kind: str  # "message" | "reasoning" | "function_call" | "signature" (of the next call)
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None
    encrypted: str | None = None
    open: bool = True


class ResponsesStreamEncoder(StreamEncoder):
    """Writes the whole Responses event sequence, numbered, with stable ids.

    Deltas are accumulated because the closing events (`.done`, `response.completed`) carry the
    full text; that is the Responses wire format, not a choice.
    """

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.seq = 0
        self.response: dict | None = None
        self.items: list[_Item] = []
        self.current: _Item | None = None  # open message or reasoning item
        self.calls: dict[int, _Item] = {}  # neutral tool-call index -> item
        self.usage: Usage | None = None
        self.reason: StopReason | None = None
        self.done = False

    def _event(self, kind: str, payload: dict) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **payload}
        self.seq += 1
        return encode_event(dumps(payload), kind)

    def _start(self, ev: Start | None = None) -> bytes:
        created = (ev.created if ev else None) or int(time.time())
        model = (ev.model if ev else None) or self.req.model
        self.response = response_shell(self.req, gateway_id("resp_"), created, model)
        snapshot = dict(self.response)
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        head = b""
        if self.response is None:
            head = self._start(ev if isinstance(ev, Start) else None)
        if isinstance(ev, Start):
            return head
        if isinstance(ev, ErrorEvent):
            return head + self.error(ev.status, ev.message)
        if isinstance(ev, UsageEvent):
            self.usage = merge_usage(self.usage, ev.usage)
            return head
        return head + self._body(ev)

    def _body(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            out = self._open("message")
            assert self.current is not None
            self.current.text.append(ev.text)
            return out + self._event(
                "response.output_text.delta",
                {**self._where(self.current), "content_index": 0, "delta": ev.text, "logprobs": []},
            )
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            return self._call_start(ev)
        if isinstance(ev, ToolCallDelta):
            item = self.calls.get(ev.index)
            if item is None or not ev.arguments:
                return b""
            item.text.append(ev.arguments)
            return self._event(
                "response.function_call_arguments.delta",
                {**self._where(item), "delta": ev.arguments},
            )
        if isinstance(ev, ToolCallEnd):
            item = self.calls.get(ev.index)
            return self._close(item) if item is not None else b""
        if isinstance(ev, Stop):
            self.reason = ev.reason
            return self._close_all()
        return b""

    # --- items -----------------------------------------------------------------------------

    def _where(self, item: _Item) -> dict:
        return {"item_id": item.body["id"], "output_index": item.index}

    def _new_item(self, kind: str, body: dict) -> tuple[_Item, bytes]:
        item = _Item(len(self.items), body, kind)
        self.items.append(item)
        added = self._event(
            "response.output_item.added", {"output_index": item.index, "item": dict(body)}
        )
        return item, added

    def _open(self, kind: str) -> bytes:
        if self.current is not None and self.current.kind == kind:
            return b""
        out = self._close(self.current) if self.current is not None else b""
        if kind == "message":
            body = {
                "id": gateway_id("msg_"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            item, added = self._new_item(kind, body)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            added += self._event(
                "response.content_part.added",
                {**self._where(item), "content_index": 0, "part": part},
            )
        else:
            body = {"id": gateway_id("rs_"), "type": "reasoning", "summary": []}
            item, added = self._new_item(kind, body)
        self.current = item
        return out + added

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        out = b""
        current = self.current
        # A signature closes a thinking block; text after it starts a new reasoning item.
        if ev.text and current is not None and current.kind == "reasoning" and current.signature:
            out += self._close(current)
        if ev.redacted and current is not None and current.kind == "reasoning" and current.text:
            out += self._close(current)
        out += self._open("reasoning")
        item = self.current
        assert item is not None
        if ev.text:
            if not item.text:
                part = {"type": "summary_text", "text": ""}
                out += self._event(
                    "response.reasoning_summary_part.added",
                    {**self._where(item), "summary_index": 0, "part": part},
                )
            item.text.append(ev.text)
            out += self._event(
                "response.reasoning_summary_text.delta",
                {**self._where(item), "summary_index": 0, "delta": ev.text},
            )
        item.signature = ev.signature or item.signature
        item.redacted = ev.redacted or item.redacted
        item.encrypted = ev.encrypted_content or item.encrypted
        return out

    def _call_start(self, ev: ToolCallStart) -> bytes:
        out = self._close(self.current) if self.current is not None else b""
        if ev.signature:
            signed = call_signature_item(ev.signature)
            item, added = self._new_item("signature", signed)
            item.open = False
            out += added + self._event(
                "response.output_item.done", {"output_index": item.index, "item": signed}
            )
        body = {
            "id": gateway_id("fc_"),
            "type": "function_call",
            "status": "in_progress",
            "call_id": ev.id,
            "name": self.req.tool_names.to_client(ev.name),
            "arguments": "",
        }
        item, added = self._new_item("function_call", body)
        self.calls[ev.index] = item
        return out + added

    def _close(self, item: _Item) -> bytes:
        if not item.open:
            return b""
        item.open = False
        if self.current is item:
            self.current = None
        status = "incomplete" if self.reason in INCOMPLETE_REASONS else "completed"
        body = item.body
        out = b""
        text = "".join(item.text)
        where = self._where(item)
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out += self._event(
                "response.output_text.done",
                {**where, "content_index": 0, "text": text, "logprobs": []},
            )
            out += self._event(
                "response.content_part.done", {**where, "content_index": 0, "part": part}
            )
            body["content"] = [part]
        elif item.kind == "reasoning":
            if text:
                out += self._event(
                    "response.reasoning_summary_text.done",
                    {**where, "summary_index": 0, "text": text},
                )
                part = {"type": "summary_text", "text": text}
                out += self._event(
                    "response.reasoning_summary_part.done",
                    {**where, "summary_index": 0, "part": part},
                )
                body["summary"] = [part]
            token = reasoning_token(
                ReasoningPart(
                    signature=item.signature,
                    redacted=item.redacted,
                    encrypted_content=item.encrypted,
                )
            )
            if token is not None:
                body["encrypted_content"] = token
        else:
            arguments = normalize_arguments(text)
            out += self._event(
                "response.function_call_arguments.done",
                {**where, "name": body["name"], "arguments": arguments},
            )
            body["arguments"] = arguments
        body["status"] = status
        return out + self._event(
            "response.output_item.done", {"output_index": item.index, "item": body}
        )

    def _close_all(self) -> bytes:
        out = b""
        for item in self.items:
            out += self._close(item)
        return out

    # --- end -------------------------------------------------------------------------------

    def _final(self, status: str) -> dict:
        assert self.response is not None
        body = self.response
        body["output"] = [item.body for item in self.items]
        usage = self.usage or estimated_usage(self.req, body["output"])
        finish_shell(body, status, self.reason, usage)
        return body

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        out = b"" if self.response is not None else self._start()
        self.reason = self.reason or "error"
        for item in self.items:
            if item.open:
                item.open = False
                item.body["status"] = "incomplete"
                if item.kind == "function_call":
                    item.body["arguments"] = "".join(item.text)
                elif item.kind == "message":
                    item.body["content"] = [
                        {"type": "output_text", "text": "".join(item.text), "annotations": []}
                    ]
        self.done = True
        seq, self.seq = self.seq, self.seq + 1
        failed = stream_error_event(
            "responses", status, message, response=self._final("failed"), sequence_number=seq
        )
        return out + failed

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = b"" if self.response is not None else self._start()
        out += self._close_all()
        status = status_of(self.reason)
        self.done = True
        return out + self._event(f"response.{status}", {"response": self._final(status)})
