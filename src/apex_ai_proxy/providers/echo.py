"""`kind: echo`: a provider that answers locally, so the gateway can be tried without any key.

It speaks the OpenAI Chat dialect, so every client dialect reaches it through the usual
translation path. The answer repeats the last user message; `token_delay_ms` paces streams.
To the dispatcher it is an adapter like any other: its `send` answers the built request
in-process (reading `stream` from the body, as an OpenAI upstream does) instead of sending it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import orjson

from apex_ai_proxy.http import ChunkConsumer, ClientOptions, Timeouts
from apex_ai_proxy.providers.base import ProviderAdapter, Sender, UpstreamRequest

CHAT_URL = "local://echo/chat/completions"
EMBEDDINGS_URL = "local://echo/embeddings"


class LocalResponse:
    """An UpstreamResponse made locally (upstream.py)."""

    def __init__(
        self,
        status: int,
        content_type: str,
        body: bytes | None = None,
        chunks: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = {"content-type": content_type}
        self._body = body
        self._chunks = chunks
        self._done = False

    async def read(self, limit: int | None = None) -> bytes:  # local: nothing to cap
        if self._body is not None:
            return self._body
        parts = []
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def next_chunk(self) -> bytes | None:
        if self._done:
            return None
        if self._chunks is None:
            self._done = True
            return self._body or b""
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            self._done = True
            return None

    async def pipe(self, consume: ChunkConsumer) -> None:
        while (chunk := await self.next_chunk()) is not None:
            wait = consume(chunk)
            if wait is not None:
                await wait

    def release(self) -> None:
        self._done = True


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


class EchoAdapter(ProviderAdapter):
    kind = "echo"
    dialect = "openai_chat"
    local = True

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return CHAT_URL

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return EMBEDDINGS_URL

    async def send(  # type: ignore[override]
        self, client: Sender, request: UpstreamRequest, timeouts: Timeouts, options: ClientOptions
    ) -> LocalResponse:
        body = orjson.loads(request.body or b"{}")
        if request.url == EMBEDDINGS_URL:
            return await self.respond_embeddings(body)
        return await self.respond_chat(body, body.get("stream") is True)

    async def respond_chat(self, body: dict, stream: bool) -> LocalResponse:
        text = _last_user_text(body) or "(echo: no user text)"
        model = body.get("model") or "echo"
        completion_id = "chatcmpl-echo-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        prompt_tokens = max(1, len(orjson.dumps(body.get("messages") or [])) // 4)
        words = text.split(" ")
        completion_tokens = len(words)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not stream:
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
            return LocalResponse(200, "application/json", orjson.dumps(payload))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        delay = self.config.token_delay_ms / 1000.0
        return LocalResponse(
            200,
            "text/event-stream",
            chunks=self._stream(completion_id, created, model, words, usage, include_usage, delay),
        )

    async def _stream(
        self,
        completion_id: str,
        created: int,
        model: str,
        words: list[str],
        usage: dict,
        include_usage: bool,
        delay: float,
    ) -> AsyncIterator[bytes]:
        def frame(
            delta: dict,
            finish: str | None = None,
            with_usage: dict | None = None,
            choices: bool = True,
        ) -> bytes:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
                if choices
                else [],
            }
            if with_usage is not None:
                chunk["usage"] = with_usage
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        yield frame({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if delay:
                await asyncio.sleep(delay)
            yield frame({"content": word if i == 0 else " " + word})
        yield frame({}, "stop")
        if include_usage:
            yield frame({}, with_usage=usage, choices=False)
        yield b"data: [DONE]\n\n"

    async def respond_embeddings(self, body: dict) -> LocalResponse:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = []
        for i, item in enumerate(items):
            digest = hashlib.sha256(orjson.dumps(item)).digest()
            data.append(
                {"object": "embedding", "index": i, "embedding": [b / 255.0 for b in digest[:16]]}
            )
        tokens = sum(max(1, len(str(item)) // 4) for item in items)
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model") or "echo",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return LocalResponse(200, "application/json", orjson.dumps(payload))
