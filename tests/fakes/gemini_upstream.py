"""A scriptable fake of the Gemini API (v1beta): a real aiohttp server on 127.0.0.1.

    async with FakeGemini() as fake:               # fake.base_url -> "http://127.0.0.1:PORT"
        fake.push_text("Hello")
        fake.push_tool_calls([("get_weather", {"city": "Paris"}), ("now", {})])
        fake.push_thinking("Let me think", "sig-1", text="42")
        fake.push_error(429, {"error": {"code": 429, "message": "…", "status": "RESOURCE_EXHAUSTED"}})
        fake.push_break("partial answer")          # stream: cut the connection mid-answer
        fake.requests[0].path / .headers / .json  # path carries model and method

Serves POST /v1beta/models/{model}:countTokens (`count_tokens`), :generateContent and
:streamGenerateContent?alt=sse (one
GenerateContentResponse JSON per SSE `data:` frame, the last one with finishReason and usage).
An empty queue answers "ok".
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
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class Canned:
    parts: list[dict] = field(default_factory=list)
    finish_reason: str = "STOP"
    usage: dict = field(
        default_factory=lambda: {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "totalTokenCount": 15,
        }
    )
    status: int = 200
    error_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    break_after_parts: int | None = None
    model: str = "gemini-fake-1"
    id: str = "resp_fake_1"


def _chunks(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeGemini:
    def __init__(self) -> None:
        self.queue: deque[Canned] = deque()
        self.requests: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.count_tokens = 42  # what :countTokens answers

    def push(self, canned: Canned) -> Canned:
        self.queue.append(canned)
        return canned

    def push_text(self, text: str, **kw: Any) -> Canned:
        return self.push(Canned([{"text": text}], **kw))

    def push_tool_calls(
        self, calls: list[tuple[str, dict]], signature: str | None = "gsig-1", **kw: Any
    ) -> Canned:
        parts = []
        for i, (name, args) in enumerate(calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if i == 0 and signature:
                part["thoughtSignature"] = signature
            parts.append(part)
        return self.push(Canned(parts, **kw))

    def push_thinking(self, thought: str, signature: str, text: str = "", **kw: Any) -> Canned:
        parts: list[dict] = [{"text": thought, "thought": True, "thoughtSignature": signature}]
        if text:
            parts.append({"text": text})
        return self.push(Canned(parts, **kw))

    def push_error(self, status: int, body: Any = None, headers: dict | None = None) -> Canned:
        if body is None:
            body = {
                "error": {"code": status, "message": f"fake error {status}", "status": "INTERNAL"}
            }
        return self.push(Canned(status=status, error_body=body, headers=headers or {}))

    def push_break(self, text: str) -> Canned:
        return self.push(Canned([{"text": text}], break_after_parts=1))

    async def start(self) -> FakeGemini:
        app = web.Application()
        app.router.add_post("/v1beta/models/{target}", self._generate)
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

    async def __aenter__(self) -> FakeGemini:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def response(self, canned: Canned, parts: list[dict] | None = None, final: bool = True) -> dict:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": canned.parts if parts is None else parts},
            "index": 0,
        }
        body: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": canned.model,
            "responseId": canned.id,
        }
        if final:
            candidate["finishReason"] = canned.finish_reason
            body["usageMetadata"] = canned.usage
        return body

    def stream_chunks(self, canned: Canned) -> list[dict]:
        pieces: list[dict] = []
        for part in canned.parts:
            if "text" in part and len(part["text"]) > 4:
                texts = _chunks(part["text"])
                pieces += [
                    {**part, "text": t}
                    if i == len(texts) - 1
                    else {k: v for k, v in {**part, "text": t}.items() if k != "thoughtSignature"}
                    for i, t in enumerate(texts)
                ]
            else:
                pieces.append(part)
        chunks = [self.response(canned, [p], final=False) for p in pieces]
        chunks.append(self.response(canned, [{"text": ""}], final=True))
        return chunks

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            Received(request.path, dict(request.query), dict(request.headers), body)
        )
        if request.match_info["target"].endswith(":countTokens"):
            return web.json_response({"totalTokens": self.count_tokens})
        canned = self.queue.popleft() if self.queue else Canned([{"text": "ok"}])
        if canned.status != 200:
            return web.json_response(
                canned.error_body, status=canned.status, headers=canned.headers
            )
        if not request.match_info["target"].endswith(":streamGenerateContent"):
            return web.json_response(self.response(canned))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunks = self.stream_chunks(canned)
        if canned.break_after_parts is not None:
            for chunk in chunks[: canned.break_after_parts]:
                await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
            await asyncio.sleep(0.01)
            assert request.transport is not None
            request.transport.close()
            return response
        for chunk in chunks:
            await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
        await response.write_eof()
        return response
