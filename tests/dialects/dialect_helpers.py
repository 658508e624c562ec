"""Shared helpers for the dialect tests: translation shortcuts and a byte-serving SSE server."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import NeutralRequest
from apex_ai_proxy.sse import SSEParser

OPENAI = get_dialect("openai_chat")
ANTHROPIC = get_dialect("anthropic")
GEMINI = get_dialect("gemini")


def translate_request(
    body: dict, source: str, target: str, stream: bool = False
) -> tuple[dict, NeutralRequest]:
    req = get_dialect(source).decode_request(body)
    return get_dialect(target).encode_request(req, "upstream-model", stream), req


def translate_stream(
    raw: bytes, upstream: str, client: str, req: NeutralRequest, cut: int = 7
) -> bytes:
    """Upstream SSE bytes (fed in small pieces) -> client SSE bytes, as the pipeline will do."""
    parser = SSEParser()
    decoder = get_dialect(upstream).stream_decoder()
    encoder = get_dialect(client).stream_encoder(req)
    out = b""
    for i in range(0, len(raw), cut):
        for ev in parser.feed(raw[i : i + cut]):
            for neutral in decoder.feed(ev):
                out += encoder.encode(neutral)
    for ev in parser.flush():
        for neutral in decoder.feed(ev):
            out += encoder.encode(neutral)
    for neutral in decoder.finish():
        out += encoder.encode(neutral)
    return out + encoder.finish()


def events(raw: bytes) -> list[tuple[str | None, Any]]:
    parser = SSEParser()
    out = []
    for ev in parser.feed(raw) + parser.flush():
        out.append((ev.event, ev.data if ev.data == "[DONE]" else orjson.loads(ev.data)))
    return out


@asynccontextmanager
async def serve_bytes(path: str, payload: bytes, content_type: str = "text/event-stream"):
    """A server answering POST `path` with `payload`; yields its base URL and the bodies it got."""
    received: list[dict] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        received.append(await request.json())
        response = web.StreamResponse(headers={"content-type": content_type})
        await response.prepare(request)
        await response.write(payload)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()
