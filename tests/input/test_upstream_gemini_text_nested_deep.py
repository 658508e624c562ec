"""Regression (hypothesis, 2026-12-02, fourth session): a Gemini upstream's stream event whose
part holds a deeply nested value (256 levels of lists and objects) where the text belongs cut
the client's /v1/responses stream mid-way (an incomplete chunked body): the value reached the
encoder as text. A field of the wrong type in a Gemini event now counts as absent, as the other
dialects' decoders treat it (dialects.base.text_field), and the stream ends normally."""

from __future__ import annotations

import pytest
from fuzz_support import _deep
from upstream_shapes import STREAM_ENDS, STREAMS, sse

EVENT = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "hm", "thought": True},
                    {"text": _deep(256)},
                    {"functionCall": {"name": "get_weather", "args": {"city": "P"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
}
ENDS = {
    "/v1/responses": b"response.completed",
    "/v1/chat/completions": b"[DONE]",
    "/v1/messages": b"message_stop",
}


@pytest.mark.parametrize("endpoint", sorted(ENDS))
async def test_a_deeply_nested_value_where_text_belongs_ends_the_stream_normally(shapes, endpoint):
    first = sse(*STREAMS["gemini"][0])  # the stream has started when the event comes
    shapes.upstream.stream([first, sse(None, EVENT), STREAM_ENDS.get("gemini", b"")])
    status, raw = await shapes.ask(endpoint, "gemini", stream=True)  # read to its end
    assert status == 200, raw[:300]
    assert ENDS[endpoint] in raw, raw[-300:]
