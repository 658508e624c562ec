"""Whole generateContent responses: parts, finish reasons and usage."""

from __future__ import annotations

import base64
import re
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


# thoughtSignature is `bytes` in Google's API: the SDKs reject a value that is not base64.
# Signatures of other vendors that are not (OpenAI-compatible reasoning signatures, …) travel
# to Gemini clients wrapped as base64 of WRAPPED + signature, and are unwrapped when they
# come back in the client's history, so the upstream gets its own signature again.
WRAPPED = b"apex-sig:"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def client_signature(signature: str) -> str:
    """`signature` as a Gemini client can parse it (see WRAPPED)."""
    if len(signature) % 4 == 0 and _BASE64.fullmatch(signature):
        return signature
    return base64.b64encode(WRAPPED + signature.encode()).decode()


def upstream_signature(signature: str) -> str:
    """The inverse of client_signature."""
    if not signature.startswith(_WRAPPED_B64):
        return signature
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return signature
    return raw[len(WRAPPED) :].decode("utf-8", "replace") if raw.startswith(WRAPPED) else signature


_WRAPPED_B64 = base64.b64encode(WRAPPED).decode()[:8]  # what every wrapped signature starts with


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
                item["thoughtSignature"] = client_signature(part.signature)
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
        item["thoughtSignature"] = client_signature(signature)
    return item


def stop_reason_of(reason: str | None, has_calls: bool) -> StopReason:
    neutral = FINISH_TO_NEUTRAL.get(reason or "STOP", "stop")
    return "tool_calls" if neutral == "stop" and has_calls else neutral
