"""Issue 10 finding: an upstream answering a JSON array is a 502 in the client's dialect."""

from __future__ import annotations

import asyncio

from fuzz_support import assert_error_shape


async def test_upstream_answering_a_json_array_is_502_in_the_client_dialect(shapes):
    shapes.upstream.whole(b"[1,2,3]")
    for endpoint, dialect in [
        ("/v1/messages", "openai_chat"),  # translated
        ("/v1/messages", "anthropic"),  # relayed
        ("/v1/chat/completions", "gemini"),
        ("/v1/responses", "anthropic"),
    ]:
        # Each 502 cools its key down for the gateway's 1 ms: wait it out, or a fast next
        # request on the same model finds no key and gets the 503 instead.
        await asyncio.sleep(0.01)
        status, raw = await shapes.ask(endpoint, dialect, stream=False)
        assert status == 502, (endpoint, dialect, raw)
        assert_error_shape(endpoint, status, raw)
