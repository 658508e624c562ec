"""A sink that hangs or fails never slows or fails a request; what it cannot take is dropped and
counted (recorder counters and `apex_records_dropped_total` on /metrics)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from records_gateway_support import TOKEN, provider

REQUESTS = 300
CONCURRENCY = 20
BOUND_S = 60.0  # generous: 300 requests take well under a second or two when nothing blocks


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections, reads whatever comes, never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in connections:
        writer.close()
    server.close()


@pytest.fixture
async def failing_server() -> AsyncIterator[tuple[str, list[int]]]:
    """Answers every post with a 500; counts them."""
    hits: list[int] = []

    async def fail(request: web.Request) -> web.Response:
        await request.read()
        hits.append(1)
        return web.Response(status=500, text="log store down")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fail)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", hits
    await runner.cleanup()


def broken_sink_config(fake, tmp_path: Path, sink_url: str) -> dict:
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"alpha": provider(fake.base_url, "sk-alpha-key-0000")},
        "models": {"m": {"providers": [{"provider": "alpha"}]}},
        "records": {
            "queue_size": 4,
            "batch_size": 2,
            "flush_interval_s": 0.05,
            "sinks": [
                {
                    "type": "http",
                    "base_url": sink_url,
                    "project": "p",
                    "logstore": "requests",
                    "timeout_s": 30,
                    "buffer_size": 4,
                    "max_retries": 1,
                },
                {"type": "jsonl", "path": str(tmp_path / "records.jsonl")},
            ],
        },
    }


async def serve_many(gw) -> float:
    client = gw.openai(TOKEN)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> str:
        async with gate:
            done = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"n{i}"}]
            )
            return done.choices[0].message.content

    started = time.monotonic()
    answers = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(REQUESTS))), BOUND_S)
    assert [a.endswith(f"heard: n{i}") for i, a in enumerate(answers)] == [True] * REQUESTS
    return time.monotonic() - started


async def settled(recorder) -> None:
    """The queue is drained and the jsonl sink has written what it was given."""
    async with asyncio.timeout(10):
        while recorder.queued or any(s.buffered for s in recorder.sinks if s.name == "jsonl"):
            await asyncio.sleep(0.01)


def dropped_on_metrics(text: str, stage: str) -> float:
    match = re.search(rf'^apex_records_dropped_total{{stage="{stage}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def metrics_text(gw) -> str:
    async with gw.http().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_hanging_sink_neither_slows_nor_fails_requests(
    gateway, fake_upstream, tmp_path: Path, silent_server: str
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(broken_sink_config(fake, tmp_path, silent_server))
    before = dropped_on_metrics(await metrics_text(gw), "http")

    await serve_many(gw)

    recorder = gw.app.services.recorder
    await settled(recorder)
    http_sink = next(s for s in recorder.sinks if s.name == "http")
    assert http_sink.written == 0
    assert http_sink.dropped > 0  # its buffer of 4 filled while the first post hangs
    assert dropped_on_metrics(await metrics_text(gw), "http") - before == http_sink.dropped
    # the healthy sink next to it wrote everything the queue let through
    jsonl = next(s for s in recorder.sinks if s.name == "jsonl")
    assert jsonl.written == recorder.submitted > 0
    assert recorder.submitted + recorder.dropped == REQUESTS


async def test_a_failing_sink_neither_slows_nor_fails_requests(
    gateway, fake_upstream, tmp_path: Path, failing_server
) -> None:
    url, hits = failing_server
    fake = await fake_upstream("alpha")
    gw = await gateway(broken_sink_config(fake, tmp_path, url))

    await serve_many(gw)

    recorder = gw.app.services.recorder
    await settled(recorder)
    http_sink = next(s for s in recorder.sinks if s.name == "http")
    assert hits  # it really was tried
    assert http_sink.written == 0
    assert http_sink.dropped + recorder.dropped > 0
    assert recorder.submitted + recorder.dropped == REQUESTS
    text = await metrics_text(gw)
    assert dropped_on_metrics(text, "http") >= http_sink.dropped > 0
