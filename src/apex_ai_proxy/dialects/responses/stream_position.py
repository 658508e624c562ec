"""Where a relayed Responses stream stood when it broke: the response the client saw start, and
the sequence number its next event takes.

Read only when a same-dialect relay fails (never per chunk), from the first and last bytes the
relay kept, so the failure can end the stream with the same `response.failed` event a
translated stream ends with (errors/render.py).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from apex_ai_proxy.dialects.responses.ids import gateway_id
from apex_ai_proxy.sse import SSEParser

_SEQUENCE = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"(resp_[A-Za-z0-9_-]{1,200})"')


def stream_position(head: bytes, tail: bytes) -> tuple[dict[str, Any], int]:
    """The latest response snapshot in `head` (the created event; a minimal response with its
    id when that event was longer than the head), and one past the last sequence number."""
    numbers = _SEQUENCE.findall(tail) or _SEQUENCE.findall(head)
    following = max(int(n) for n in numbers) + 1 if numbers else 0
    return _snapshot(head), following


def _snapshot(head: bytes) -> dict[str, Any]:
    latest: dict[str, Any] | None = None
    for event in SSEParser().feed(head):
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            continue
        response = payload.get("response") if isinstance(payload, dict) else None
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            latest = response
    if latest is not None:
        return latest
    found = _RESPONSE_ID.search(head)
    response_id = found.group(1).decode() if found else gateway_id("resp_")
    return {"id": response_id, "object": "response", "output": []}
