"""Whole Messages responses: content blocks, stop reasons and usage."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import count_of, parse_arguments
from apex_ai_proxy.dialects.neutral import (
    NeutralRequest,
    ReasoningPart,
    StopReason,
    TextPart,
    ToolCallPart,
    Usage,
)

STOP_TO_NEUTRAL: dict[str, StopReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "stop_sequence": "stop_sequence",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
NEUTRAL_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
    "error": "end_turn",
}


def decode_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    cached = count_of(usage.get("cache_read_input_tokens"))
    created = count_of(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = count_of(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        count_of(usage.get("input_tokens")) + cached + created,
        count_of(usage.get("output_tokens")),
        cached,
        created,
        thinking,
    )


def encode_usage(usage: Usage | None) -> dict:
    usage = usage or Usage()
    uncached = max(usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens, 0)
    return {
        "input_tokens": uncached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def response_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    blocks: list[dict] = []
    for part in parts:
        if isinstance(part, ReasoningPart):
            if part.redacted:
                blocks.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.text or part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
                )
        elif isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            name = req.tool_names.to_client(part.name)
            blocks.append(
                {
                    "type": "tool_use",
                    "id": part.id,
                    "name": name,
                    "input": parse_arguments(part.arguments),
                }
            )
    return blocks
