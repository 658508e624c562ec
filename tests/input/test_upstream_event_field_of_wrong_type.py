"""Regression (hypothesis, 2026-12-02): an Anthropic upstream's `content_block_start` whose text
block holds a list instead of a string reached the Responses encoder, which joins text as
strings: a TypeError after the stream had started, so the client saw a cut connection. A field
of the wrong type in an upstream event now counts as absent, like the other dialects' decoders
treat it, and the stream ends normally."""

from __future__ import annotations

import pytest
from upstream_shapes import STREAM_ENDS, STREAMS, sse

WRONG_TYPES = {
    "content_block_start": {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": [["x"]]},
    },
    "content_block_delta": {
        "type": "content_block_delta",
        "index": [0],
        "delta": {"type": "text_delta", "text": {"a": 1}},
    },
}


@pytest.mark.parametrize("endpoint", ["/v1/responses", "/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("event_name", sorted(WRONG_TYPES))
async def test_a_list_where_text_belongs_ends_the_stream_normally(shapes, endpoint, event_name):
    events = STREAMS["anthropic"]
    frames = [
        sse(name, WRONG_TYPES[event_name] if name == event_name else data) for name, data in events
    ]
    shapes.upstream.stream(frames + [STREAM_ENDS.get("anthropic", b"")])
    status, raw = await shapes.ask(endpoint, "anthropic", stream=True)
    assert status == 200, raw[:300]
    complete = {
        "/v1/responses": b"response.completed",
        "/v1/chat/completions": b"[DONE]",
        "/v1/messages": b"message_stop",
    }[endpoint]
    assert complete in raw, raw[-300:]
