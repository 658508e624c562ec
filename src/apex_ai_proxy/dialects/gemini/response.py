"""Whole generateContent responses: parts, finish reasons and usage."""

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

FILTERED = (
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
)
FINISH_TO_NEUTRAL: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "error",
    **{reason: "content_filter" for reason in FILTERED},
}
NEUTRAL_TO_FINISH = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}


def decode_usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = count_of(meta.get("thoughtsTokenCount"))
    prompt = count_of(meta.get("promptTokenCount")) + count_of(meta.get("toolUsePromptTokenCount"))
    output = count_of(meta.get("candidatesTokenCount")) + thoughts
    return Usage(prompt, output, count_of(meta.get("cachedContentTokenCount")), 0, thoughts)


def encode_usage(usage: Usage) -> dict:
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def response_parts(req: NeutralRequest, parts: list) -> list[dict]:
    out: list[dict] = []
    for part in parts:
        if isinstance(part, ReasoningPart) and (part.text or part.signature):
            item: dict[str, Any] = {"text": part.text, "thought": True}
            if part.signature:
                item["thoughtSignature"] = part.signature
            out.append(item)
        elif isinstance(part, TextPart) and part.text:
            out.append({"text": part.text})
        elif isinstance(part, ToolCallPart):
            out.append(
                call_part(req, part.id, part.name, parse_arguments(part.arguments), part.signature)
            )
    return out


def call_part(
    req: NeutralRequest, call_id: str, name: str, args: dict, signature: str | None
) -> dict:
    item: dict[str, Any] = {
        "functionCall": {"id": call_id, "name": req.tool_names.to_client(name), "args": args}
    }
    if signature:
        item["thoughtSignature"] = signature
    return item


def stop_reason_of(reason: str | None, has_calls: bool) -> StopReason:
    neutral = FINISH_TO_NEUTRAL.get(reason or "STOP", "stop")
    return "tool_calls" if neutral == "stop" and has_calls else neutral
