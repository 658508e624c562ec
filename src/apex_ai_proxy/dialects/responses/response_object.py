"""The Responses API's Response object (a whole answer): the shell repeating the request's
settings, output items, status and usage.

Named `response_object` rather than `response`: in this package "responses" is the API, so the
module says which thing it builds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from apex_ai_proxy.dialects.base import count_of, normalize_arguments
from apex_ai_proxy.dialects.estimate import estimate_tokens
from apex_ai_proxy.dialects.neutral import (
    NeutralRequest,
    NeutralResponse,
    ReasoningPart,
    StopReason,
    TextPart,
    ToolCallPart,
    Usage,
)
from apex_ai_proxy.dialects.responses.ids import gateway_id
from apex_ai_proxy.dialects.responses.reasoning_tokens import call_signature_item
from apex_ai_proxy.dialects.responses.request_encode import encode_reasoning_item

# Request fields a Response object repeats back to the client.
ECHO_FIELDS = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)
ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(slots=True)
class ResponsesRequest(NeutralRequest):
    """The neutral request plus what a Response object must repeat back to the client."""

    echo: dict[str, Any] = field(default_factory=dict)


def encode_usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def decode_usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    details_in = value.get("input_tokens_details")
    details_out = value.get("output_tokens_details")
    return Usage(
        input_tokens=count_of(value.get("input_tokens")),
        output_tokens=count_of(value.get("output_tokens")),
        cached_tokens=count_of(details_in.get("cached_tokens"))
        if isinstance(details_in, dict)
        else 0,
        reasoning_tokens=count_of(details_out.get("reasoning_tokens"))
        if isinstance(details_out, dict)
        else 0,
    )


def estimated_usage(req: NeutralRequest, output: list[dict]) -> Usage:
    """Usage when the upstream reported none: the prompt estimate and ~4 characters a token."""
    chars = len(orjson.dumps(output)) if output else 0
    return Usage(input_tokens=estimate_tokens(req), output_tokens=-(-chars // 4))


def response_shell(req: NeutralRequest, response_id: str, created_at: int, model: str) -> dict:
    """A Response object with no output yet, repeating the request's settings."""
    echo = req.echo if isinstance(req, ResponsesRequest) else {}
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "usage": None,
    }
    for key in ECHO_FIELDS:
        value = echo.get(key)
        body[key] = value if value is not None else ECHO_DEFAULTS.get(key)
    return body


def finish_shell(body: dict, status: str, reason: StopReason | None, usage: Usage) -> None:
    body["status"] = status
    if status == "incomplete":
        body["incomplete_details"] = {"reason": INCOMPLETE_REASONS.get(reason or "")}
    if status == "completed":
        body["completed_at"] = int(time.time())
    body["usage"] = encode_usage(usage)


def status_of(reason: StopReason | None) -> str:
    return "incomplete" if reason in INCOMPLETE_REASONS else "completed"


def stop_reason_of(body: dict, has_calls: bool) -> StopReason:
    if body.get("status") == "incomplete":
        why = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if why == "content_filter" else "length"
    if body.get("status") == "failed":
        return "error"
    return "tool_calls" if has_calls else "stop"


def _message_item(item_id: str, text: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _call_item(item_id: str, call: ToolCallPart, name: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": name,
        "arguments": normalize_arguments(call.arguments),
    }


def output_items(resp: NeutralResponse, req: NeutralRequest) -> list[dict]:
    items: list[dict] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            items.append(_message_item(gateway_id("msg_"), "".join(texts)))
            texts.clear()

    for part in resp.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ReasoningPart):
            flush()
            item = encode_reasoning_item(part, with_id=True)
            item["status"] = "completed"
            items.append(item)
        elif isinstance(part, ToolCallPart):
            flush()
            if part.signature:
                items.append(call_signature_item(part.signature))
            name = req.tool_names.to_client(part.name)
            items.append(_call_item(gateway_id("fc_"), part, name))
    flush()
    return items
