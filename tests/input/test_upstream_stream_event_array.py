"""Issue 10 finding: an upstream stream event that is a JSON array is one error event mid-stream,
and a failover before the first byte."""

from __future__ import annotations

import aiohttp
from fuzz_support import BODIES
from gateway_support import TOKEN
from upstream_shapes import STREAMS, sse


async def test_upstream_stream_event_array_mid_stream_is_an_error_event(shapes):
    events = [sse(name, data) for name, data in STREAMS["anthropic"]]
    events[2] = sse("content_block_delta", b"[1,2,3]")
    shapes.upstream.stream(events)
    status, raw = await shapes.ask("/v1/chat/completions", "anthropic", stream=True)
    assert status == 200
    assert raw.count(b'data: {"error"') == 1
    assert b"wrong shape" in raw


async def test_upstream_stream_array_before_the_first_byte_fails_over(gateway, fake_upstream):
    from upstream_shapes import ShapeUpstream

    broken = await ShapeUpstream().start()
    try:
        broken.stream([sse("message_start", b"[1,2,3]")])
        healthy = await fake_upstream("healthy")
        providers = {
            "broken": {"kind": "anthropic", "base_url": broken.base_url, "api_keys": ["k1"]},
            "healthy": {"kind": "openai", "base_url": healthy.base_url, "api_keys": ["k2"]},
        }
        route = [{"provider": "broken", "model": "b"}, {"provider": "healthy", "model": "h"}]
        gw = await gateway(
            {
                "gateway_tokens": [TOKEN],
                "providers": providers,
                "models": {"m": {"strategy": "round-robin", "providers": route}},
                "retry": {"max_attempts": 2},
            }
        )
        async with aiohttp.ClientSession() as session:
            body = {**BODIES["/v1/chat/completions"], "model": "m", "stream": True}
            async with session.post(
                gw.base_url + "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {TOKEN}"},
            ) as resp:
                raw = await resp.read()
                assert resp.status == 200
                assert resp.headers["x-apex-provider"] == "healthy"
                assert resp.headers["x-apex-attempts"] == "2"
        assert b"[DONE]" in raw and b'"error"' not in raw
    finally:
        await broken.stop()
