"""Read token usage out of responses in any dialect, for records and metrics.

Streams relayed on the fast path are not parsed; the dispatcher keeps the first and the last
few chunks, and `usage_from_stream` reads usage from those at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class TokenUsage:
    prompt: int = 0  # all input tokens, cached ones included
    completion: int = 0  # all output tokens, reasoning included
    cached: int = 0
    reasoning: int = 0

    def merge(self, other: TokenUsage) -> None:
        self.prompt = other.prompt or self.prompt
        self.completion = other.completion or self.completion
        self.cached = other.cached or self.cached
        self.reasoning = other.reasoning or self.reasoning


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def usage_from_body(dialect: str, data: object) -> TokenUsage | None:
    """Usage from a whole response body (or one stream event) of `dialect`, if it has any."""
    if not isinstance(data, dict):
        return None
    if dialect == "anthropic":
        usage = data.get("usage")
        if not isinstance(usage, dict):
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        if not isinstance(usage, dict):
            return None
        cached = _int(usage.get("cache_read_input_tokens"))
        created = _int(usage.get("cache_creation_input_tokens"))
        return TokenUsage(
            _int(usage.get("input_tokens")) + cached + created,
            _int(usage.get("output_tokens")),
            cached,
            0,
        )
    if dialect == "gemini":
        meta = data.get("usageMetadata")
        if not isinstance(meta, dict):
            return None
        thoughts = _int(meta.get("thoughtsTokenCount"))
        return TokenUsage(
            _int(meta.get("promptTokenCount")),
            _int(meta.get("candidatesTokenCount")) + thoughts,
            _int(meta.get("cachedContentTokenCount")),
            thoughts,
        )
    if dialect == "responses":
        response = data.get("response") if "response" in data else data
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return None
        details_in = usage.get("input_tokens_details") or {}
        details_out = usage.get("output_tokens_details") or {}
        return TokenUsage(
            _int(usage.get("input_tokens")),
            _int(usage.get("output_tokens")),
            _int(details_in.get("cached_tokens")),
            _int(details_out.get("reasoning_tokens")),
        )
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    details_in = usage.get("prompt_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        _int(usage.get("prompt_tokens")),
        _int(usage.get("completion_tokens")),
        _int(details_in.get("cached_tokens") if isinstance(details_in, dict) else 0),
        _int(details_out.get("reasoning_tokens") if isinstance(details_out, dict) else 0),
    )


def _event_with_object(data: bytes, key: bytes, from_end: bool) -> object | None:
    """The JSON of the SSE data line holding `key` followed by an object (not null).

    Found with byte searches, so a relayed stream is never run through the SSE parser: only
    the one line that carries usage is decoded.
    """
    pos = len(data) if from_end else 0
    while True:
        idx = data.rfind(key, 0, pos) if from_end else data.find(key, pos)
        if idx < 0:
            return None
        pos = idx if from_end else idx + len(key)
        if idx and data[idx - 1] == 0x5C:  # \" : inside a JSON string, not a key
            continue
        value = data[idx + len(key) : idx + len(key) + 8].lstrip()
        if not value.startswith(b"{"):
            continue  # "usage": null
        start = data.rfind(b"data:", 0, idx)
        end = data.find(b"\n", idx)
        if start < 0:
            continue
        try:
            return orjson.loads(data[start + 5 : end if end >= 0 else len(data)])
        except orjson.JSONDecodeError:
            continue


def usage_from_stream(dialect: str, head: bytes, tail: bytes) -> TokenUsage | None:
    """Usage from the first chunk and the last bytes of a relayed SSE stream."""
    key = b'"usageMetadata":' if dialect == "gemini" else b'"usage":'
    found = usage_from_body(dialect, _event_with_object(tail, key, from_end=True))
    if dialect == "anthropic":
        # message_start carries the input side; message_delta (at the end) the output side.
        start = usage_from_body(dialect, _event_with_object(head, key, from_end=False))
        if start is not None and found is not None:
            start.merge(found)
            return start
        return start or found
    return found
