"""A client that reads slower than the upstream writes: the gateway holds back the upstream
(bounded buffering) instead of queueing the whole stream in memory, and loses no byte."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web
from fakes.ports import free_port
from gateway_config import MESSAGES, config, model

CHUNKS = 1024
CHUNK_TEXT = "x" * (64 * 1024)  # 1024 frames of ~64 KiB: a 64 MiB stream


def frame(index: int) -> bytes:
    chunk = {
        "id": "chatcmpl-big",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "big-model",
        "choices": [{"index": 0, "delta": {"content": CHUNK_TEXT}, "finish_reason": None}],
        "n": index,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


EXPECTED = b"".join(frame(i) for i in range(CHUNKS)) + b"data: [DONE]\n\n"


class BigStreamUpstream:
    """Streams EXPECTED as fast as the gateway takes it; `sent` is how far it got."""

    def __init__(self) -> None:
        self.sent = 0
        self.finished = asyncio.Event()
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._stream)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        view = memoryview(EXPECTED)
        step = 256 * 1024
        for start in range(0, len(view), step):
            await resp.write(bytes(view[start : start + step]))  # waits while nobody reads
            self.sent = start + step
        await resp.write_eof()
        self.finished.set()
        return resp


async def test_slow_client_holds_back_the_upstream_and_gets_every_byte(gateway):
    upstream = BigStreamUpstream()
    await upstream.start()
    try:
        provider = {
            "kind": "openai",
            "base_url": f"http://127.0.0.1:{upstream.port}/v1",
            "api_keys": ["sk-big"],
            "timeout": 30.0,
        }
        gw = await gateway(config({"big": provider}, {"m": model("big")}))
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{gw.base_url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200
            await asyncio.sleep(1.0)  # the client reads nothing for a second
            assert not upstream.finished.is_set()
            # Socket buffers on both sides plus the gateway's own bounded buffers hold some
            # megabytes; an unbounded relay would have taken all 64 MiB by now.
            assert upstream.sent < len(EXPECTED) * 3 // 4, upstream.sent
            received = await asyncio.wait_for(response.read(), 30)
        assert len(received) == len(EXPECTED)
        assert received == EXPECTED
        assert upstream.finished.is_set()
    finally:
        await upstream.stop()
