"""Regression: a native Responses stream whose final event is larger than the relay's tail.

OpenAI's `response.completed` event repeats the whole response, the request's `tools` and
`instructions` included: with Codex's tool list it is some 50 KB on one line. The same-dialect
relay looked for the end marker and the usage only in the last 8 KB of the stream, so it took
such a stream for cut: it appended an `upstream_stream_error` event after `response.completed`
and recorded the request as broken, without tokens. Raw HTTP over loopback, no CLI needed.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from responses_support import native_provider, responses_config, store_section

TOKEN = "gw-token-large-final-event"
# Forty tools with long descriptions, as a coding agent sends them: echoed in every event.
TOOLS = [
    {
        "type": "function",
        "name": f"tool_{i}",
        "description": "Runs something useful. " * 60,
        "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}},
    }
    for i in range(40)
]


async def test_native_stream_with_a_final_event_past_the_tail_ends_clean_with_usage(
    gateway, native, tmp_path: Path
) -> None:
    fake = await native()
    config = responses_config(
        {"native": native_provider(fake)},
        {"coder": ["native"]},
        store_section(tmp_path),
        gateway_tokens=[TOKEN],
        records={
            "flush_interval_s": 0.05,
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
    )
    gw = await gateway(config)
    body = {"model": "coder", "input": "hi", "tools": TOOLS, "stream": True, "store": False}
    async with gw.http().post(
        "/v1/responses", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 200
        raw = await resp.read()
    assert b"upstream_stream_error" not in raw, raw[-300:]
    final = [e for e in raw.split(b"\n\n") if e.strip()][-1]
    assert final.startswith(b"event: response.completed"), final[:200]
    assert len(final) > 16 * 1024, "the final event must be larger than the relay's tail"
    await gw.app.services.recorder.flush()
    lines = (tmp_path / "records.jsonl").read_bytes().splitlines()
    (record,) = [orjson.loads(line) for line in lines if b'"/v1/responses"' in line]
    assert record["status"] == 200 and record["error_message"] is None, record
    assert record["prompt_tokens"] == 11 and record["completion_tokens"], record
