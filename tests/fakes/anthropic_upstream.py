"""A scriptable fake of the Anthropic Messages API: a real aiohttp server on 127.0.0.1.

    async with FakeAnthropic() as fake:           # fake.base_url -> "http://127.0.0.1:PORT"
        fake.push_text("Hello")                   # next answer (non-stream or SSE, as asked)
        fake.push_tool_calls([("get_weather", {"city": "Paris"}), ("now", {})])
        fake.push_thinking("Let me think", "sig-1", text="42")
        fake.push_error(429, {"type": "error", "error": {...}}, headers={"retry-after": "1"})
        fake.push_break("partial answer")         # stream: cut the connection mid-answer
        fake.push_count_error(429, headers={"retry-after": "30"})  # next count_tokens fails
        ...
        fake.requests[0].headers / .json / .path  # every request received, in order

An empty queue answers "ok". Streams follow the real event order: message_start, ping, per block
content_block_start / deltas / content_block_stop, message_delta, message_stop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Canned:
    blocks: list[dict] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict = field(default_factory=lambda: {"input_tokens": 10, "output_tokens": 5})
    status: int = 200
    error_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    break_after_blocks: int | None = None  # stream: cut after this many blocks (mid-block)
    model: str = "claude-fake-1"
    id: str = "msg_fake_1"


def _frame(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _chunks(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeAnthropic:
    def __init__(self) -> None:
        self.queue: deque[Canned] = deque()
        self.count_queue: deque[Canned] = deque()  # failures of the next count_tokens calls
        self.requests: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- scripting ---------------------------------------------------------------------------

    def push(self, canned: Canned) -> Canned:
        self.queue.append(canned)
        return canned

    def push_text(self, text: str, **kw: Any) -> Canned:
        return self.push(Canned([{"type": "text", "text": text}], **kw))

    def push_tool_calls(
        self, calls: list[tuple[str, dict]], text: str | None = None, **kw: Any
    ) -> Canned:
        blocks = [{"type": "text", "text": text}] if text else []
        blocks += [
            {"type": "tool_use", "id": f"toolu_{i:02d}", "name": name, "input": args}
            for i, (name, args) in enumerate(calls)
        ]
        return self.push(Canned(blocks, stop_reason="tool_use", **kw))

    def push_thinking(self, thinking: str, signature: str, text: str = "", **kw: Any) -> Canned:
        blocks = [{"type": "thinking", "thinking": thinking, "signature": signature}]
        if text:
            blocks.append({"type": "text", "text": text})
        return self.push(Canned(blocks, **kw))

    def push_error(self, status: int, body: Any = None, headers: dict | None = None) -> Canned:
        if body is None:
            body = {
                "type": "error",
                "error": {"type": "api_error", "message": f"fake error {status}"},
            }
        return self.push(Canned(status=status, error_body=body, headers=headers or {}))

    def push_count_error(
        self, status: int, body: Any = None, headers: dict | None = None
    ) -> Canned:
        canned = self.push_error(status, body, headers)
        self.queue.pop()  # queued for count_tokens, not for messages
        self.count_queue.append(canned)
        return canned

    def push_break(self, text: str) -> Canned:
        return self.push(Canned([{"type": "text", "text": text}], break_after_blocks=0))

    # --- server ------------------------------------------------------------------------------

    async def start(self) -> FakeAnthropic:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAnthropic:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _record(self, request: web.Request) -> Any:
        body = await request.json()
        self.requests.append(Received(request.path, dict(request.headers), body))
        return body

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.count_queue:
            canned = self.count_queue.popleft()
            return web.json_response(
                canned.error_body, status=canned.status, headers=canned.headers
            )
        return web.json_response({"input_tokens": len(orjson.dumps(body.get("messages"))) // 4})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        canned = self.queue.popleft() if self.queue else Canned([{"type": "text", "text": "ok"}])
        if canned.status != 200:
            return web.json_response(
                canned.error_body, status=canned.status, headers=canned.headers
            )
        if body.get("stream"):
            return await self._stream(request, canned)
        return web.json_response(self.message(canned, body.get("model")))

    def message(self, canned: Canned, model: str | None = None) -> dict:
        return {
            "id": canned.id,
            "type": "message",
            "role": "assistant",
            "model": canned.model or model,
            "content": canned.blocks,
            "stop_reason": canned.stop_reason,
            "stop_sequence": None,
            "usage": canned.usage,
        }

    def stream_frames(self, canned: Canned) -> list[bytes]:
        start = {**self.message(canned), "content": [], "stop_reason": None}
        start["usage"] = {**canned.usage, "output_tokens": 1}
        frames = [_frame("message_start", {"type": "message_start", "message": start})]
        frames.append(_frame("ping", {"type": "ping"}))
        for index, block in enumerate(canned.blocks):
            frames += self._block_frames(index, block)
        delta = {"stop_reason": canned.stop_reason, "stop_sequence": None}
        usage = {"output_tokens": canned.usage.get("output_tokens", 0)}
        frames.append(
            _frame("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        frames.append(_frame("message_stop", {"type": "message_stop"}))
        return frames

    def _block_frames(self, index: int, block: dict) -> list[bytes]:
        kind = block["type"]
        deltas: list[dict] = []
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
        elif kind == "tool_use":
            start = {**block, "input": {}}
            raw = orjson.dumps(block["input"]).decode() if block["input"] else ""
            half = len(raw) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in (raw[:half], raw[half:])
            ]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            start = block
        frames = [
            _frame(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        ]
        frames += [
            _frame(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}
            )
            for d in deltas
        ]
        frames.append(_frame("content_block_stop", {"type": "content_block_stop", "index": index}))
        return frames

    async def _stream(self, request: web.Request, canned: Canned) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        frames = self.stream_frames(canned)
        if canned.break_after_blocks is not None:
            # message_start, ping, then half of the first block's frames; then the socket dies.
            frames = frames[: 2 + 2 + canned.break_after_blocks]
            for frame in frames:
                await response.write(frame)
            await asyncio.sleep(0.01)
            assert request.transport is not None
            request.transport.close()
            return response
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response
