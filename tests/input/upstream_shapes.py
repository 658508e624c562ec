"""Valid answers of each upstream dialect (whole and streamed), and a fake that says anything.

ANSWERS[dialect]           a whole answer: text, reasoning and a tool call
STREAMS[dialect]           the same as a list of SSE events, (event name, JSON data)
ShapeUpstream              an aiohttp server on 127.0.0.1 answering every POST with what the
                           test set last: `whole(bytes)` or `stream([bytes, ...])`
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}

ANSWERS: dict[str, dict[str, Any]] = {
    "openai_chat": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "tool_calls": [TOOL_CALL]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"city": "P"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    },
    "gemini": {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "hm", "thought": True},
                        {"text": "hi"},
                        {"functionCall": {"name": "get_weather", "args": {"city": "P"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": "m",
    },
    "responses": {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "m",
        "output": [
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "hm"}],
            },
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hi", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": "{}",
                "status": "completed",
            },
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    },
}


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


_TEXT_ITEM = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
STREAMS: dict[str, list[tuple[str | None, Any]]] = {
    "openai_chat": [
        (None, _chunk({"role": "assistant", "content": ""})),
        (None, _chunk({"content": "hi"})),
        (None, _chunk({"tool_calls": [{"index": 0, **TOOL_CALL}]})),
        (None, _chunk({}, "tool_calls")),
        (None, {**_chunk({}), "choices": [], "usage": ANSWERS["openai_chat"]["usage"]}),
    ],
    "anthropic": [
        (
            "message_start",
            {"type": "message_start", "message": {**ANSWERS["anthropic"], "content": []}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "tu_1",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{}"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ],
    "gemini": [
        (
            None,
            {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "index": 0}]},
        ),
        (None, ANSWERS["gemini"]),
    ],
    "responses": [
        (
            "response.created",
            {
                "type": "response.created",
                "response": {**ANSWERS["responses"], "status": "in_progress", "output": []},
            },
        ),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": _TEXT_ITEM},
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "output_index": 0,
                "content_index": 0,
                "delta": "hi",
            },
        ),
        (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": ANSWERS["responses"]["output"][1],
            },
        ),
        ("response.completed", {"type": "response.completed", "response": ANSWERS["responses"]}),
    ],
}
STREAM_ENDS = {"openai_chat": b"data: [DONE]\n\n"}


def sse(event: str | None, data: Any) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return (
        head
        + b"data: "
        + (data if isinstance(data, bytes) else json.dumps(data).encode())
        + b"\n\n"
    )


class ShapeUpstream:
    def __init__(self) -> None:
        self.body = b"{}"
        self.events: list[bytes] | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def whole(self, body: bytes) -> None:
        self.body, self.events = body, None

    def stream(self, events: list[bytes]) -> None:
        self.events = events

    async def start(self) -> ShapeUpstream:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._answer)
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

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.events is None:
            return web.Response(body=self.body, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in self.events:
            await response.write(event)
        await response.write_eof()
        return response
