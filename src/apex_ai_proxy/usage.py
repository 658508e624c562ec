"""Read token usage out of responses in any dialect, for records and metrics.

Streams relayed on the fast path are not parsed; the dispatcher keeps the first and the last
few chunks, and `usage_from_stream` reads usage from those at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from apex_ai_proxy.sse import SSEParser


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


def usage_from_stream(dialect: str, head: bytes, tail: bytes) -> TokenUsage | None:
    """Usage from the first chunk and the last bytes of a relayed SSE stream."""
    total: TokenUsage | None = None
    for part in (head, tail):
        if b"sage" not in part:  # usage / usageMetadata
            continue
        if part is tail:
            # The tail may start mid-event: parse from the first event boundary.
            cut = part.find(b"\n\n")
            part = part[cut + 2 :] if cut >= 0 else part
        for event in SSEParser().feed(part + b"\n\n"):
            if "sage" not in event.data:
                continue
            try:
                found = usage_from_body(dialect, orjson.loads(event.data))
            except orjson.JSONDecodeError:
                continue
            if found is not None:
                if total is None:
                    total = found
                else:
                    total.merge(found)
    return total
