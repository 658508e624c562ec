"""Regression (hypothesis, 2026-12-02): an OpenAI-compatible upstream's stream whose tool-call id
was a list nested 256 deep reached the Responses encoder, whose JSON encoder gave up on the depth
after the stream had started: the client saw a cut stream. Fields of the wrong type in a chunk
(id, index, function, name, extra_content) now count as absent, as an unreadable field would."""

from __future__ import annotations

import pytest
from upstream_shapes import STREAMS, TOOL_CALL, sse


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _chunk(delta: dict, finish: str | None = None) -> dict:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
    }


WRONG = {
    "deep-id": {**TOOL_CALL, "index": 0, "id": _deep(256)},
    "list-index": {**TOOL_CALL, "index": [0]},
    "string-function": {**TOOL_CALL, "index": 0, "function": "get_weather"},
    "object-name": {**TOOL_CALL, "index": 0, "function": {"name": {"a": 1}, "arguments": "{}"}},
    "list-extra-content": {**TOOL_CALL, "index": 0, "extra_content": [1]},
}


@pytest.mark.parametrize("endpoint", ["/v1/responses", "/v1/messages", "/v1/chat/completions"])
@pytest.mark.parametrize("shape", sorted(WRONG))
async def test_a_tool_call_field_of_the_wrong_type_ends_the_stream_normally(
    shapes, endpoint, shape
):
    frames = [
        sse(None, data) if i != 2 else sse(None, _chunk({"tool_calls": [WRONG[shape]]}))
        for i, (_, data) in enumerate(STREAMS["openai_chat"])
    ]
    shapes.upstream.stream(frames + [b"data: [DONE]\n\n"])
    status, raw = await shapes.ask(endpoint, "openai_chat", stream=True)
    assert status == 200, raw[:300]
    complete = {
        "/v1/responses": b"response.completed",
        "/v1/messages": b"message_stop",
        "/v1/chat/completions": b"[DONE]",
    }[endpoint]
    assert complete in raw, raw[-300:]
