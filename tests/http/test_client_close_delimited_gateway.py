"""An upstream SSE answer that ends by closing the connection (RFC 9112 §6.3, no length, no
chunking) reaches a translated Anthropic client whole, as a normal end of stream."""

from __future__ import annotations

import anthropic
import orjson
from client_support import Close, RawUpstream


def _sse_close_delimited(words: list[str]) -> Close:
    frames = []
    for i, word in enumerate(words):
        delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        frames.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    last = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "up",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 9},
    }
    frames.append(b"data: " + orjson.dumps(last) + b"\n\ndata: [DONE]\n\n")
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    return Close(head + b"".join(frames))


async def test_close_delimited_sse_upstream_streams_whole_to_a_translated_anthropic_client(
    gateway,
):
    words = ["one ", "two ", "three"]
    async with RawUpstream(lambda r: _sse_close_delimited(words)) as upstream:
        gw = await gateway(
            {
                "gateway_tokens": ["client-token"],
                "providers": {
                    "up": {"kind": "openai", "base_url": upstream.url + "/v1", "api_keys": ["k"]}
                },
                "models": {"m": {"providers": [{"provider": "up"}]}},
                "retry": {"max_attempts": 1},
            }
        )
        client = anthropic.AsyncAnthropic(
            base_url=gw.base_url, api_key="client-token", max_retries=0, timeout=10
        )
        try:
            async with client.messages.stream(
                model="m", max_tokens=32, messages=[{"role": "user", "content": "count"}]
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
                message = await stream.get_final_message()
        finally:
            await client.close()
    assert text == "one two three"
    assert message.stop_reason == "end_turn"
