"""Finish reasons and usage, shared by whole responses and streams."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import count_of
from apex_ai_proxy.dialects.neutral import StopReason, Usage

FINISH_TO_NEUTRAL: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
NEUTRAL_TO_FINISH = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}


def decode_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    details = _object(usage.get("prompt_tokens_details"))
    cached = count_of(details.get("cached_tokens")) or count_of(
        usage.get("prompt_cache_hit_tokens")
    )
    reasoning = count_of(_object(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    return Usage(
        count_of(usage.get("prompt_tokens")),
        count_of(usage.get("completion_tokens")),
        cached,
        count_of(details.get("cache_write_tokens")),
        reasoning,
    )


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def encode_usage(usage: Usage) -> dict:
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if usage.cache_creation_tokens:
        out["prompt_tokens_details"]["cache_write_tokens"] = usage.cache_creation_tokens
    return out
