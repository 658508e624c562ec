"""NeutralRequest -> Chat Completions request body (for an OpenAI-compatible upstream)."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import data_url, normalize_arguments
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    Message,
    NeutralRequest,
    Reasoning,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from apex_ai_proxy.dialects.toolnames import OPENAI_NAME

# Anthropic-style thinking budgets mapped to an OpenAI effort (thresholds in tokens).
BUDGET_TO_EFFORT = ((4096, "low"), (16384, "medium"))


def effort_of(reasoning: Reasoning) -> str | None:
    if reasoning.effort:
        return reasoning.effort
    if reasoning.budget_tokens:
        for limit, effort in BUDGET_TO_EFFORT:
            if reasoning.budget_tokens < limit:
                return effort
        return "high"
    return None


def _encode_parts(req: NeutralRequest, parts: list, allow_images: bool = True) -> str | list:
    if all(isinstance(p, TextPart) and not p.cache_control for p in parts):
        return "".join(p.text for p in parts)
    out: list[dict] = []
    for p in parts:
        if isinstance(p, TextPart):
            item: dict = {"type": "text", "text": p.text}
        elif isinstance(p, ImagePart) and allow_images:
            url = data_url(p.media_type, p.data) if p.data is not None else p.url
            item = {"type": "image_url", "image_url": {"url": url}}
            if p.detail:
                item["image_url"]["detail"] = p.detail
        elif isinstance(p, FilePart) and (p.data is not None or p.file_id):
            file: dict = (
                {"file_id": p.file_id}
                if p.file_id
                else {"file_data": data_url(p.media_type, p.data or "")}
            )
            if p.filename:
                file["filename"] = p.filename
            item = {"type": "file", "file": file}
        else:
            req.drop("messages[].content.file_url")
            continue
        if p.cache_control:
            item["cache_control"] = p.cache_control
        out.append(item)
    return out


def encode_reasoning_fields(target: dict, parts: list[ReasoningPart]) -> None:
    text = "".join(p.text for p in parts)
    if text:
        target["reasoning_content"] = text
    signatures = [p.signature for p in parts if p.signature]
    if signatures:
        target["reasoning_signature"] = signatures[-1]
    if any(p.signature or p.redacted for p in parts):
        target["reasoning_details"] = [
            {"type": "reasoning.encrypted", "data": p.redacted}
            if p.redacted
            else {"type": "reasoning.text", "text": p.text, "signature": p.signature}
            for p in parts
        ]


def encode_tool_call(req: NeutralRequest, call: ToolCallPart, to_client: bool) -> dict:
    name = (
        req.tool_names.to_client(call.name)
        if to_client
        else req.tool_names.to_upstream(call.name, OPENAI_NAME)
    )
    out = {
        "id": call.id,
        "type": "function",
        "function": {"name": name, "arguments": normalize_arguments(call.arguments)},
    }
    if call.signature:
        out["extra_content"] = {"google": {"thought_signature": call.signature}}
    return out


def encode_messages(req: NeutralRequest, same_dialect: bool) -> list[dict]:
    out: list[dict] = []
    if req.system:
        out.append({"role": "system", "content": _encode_parts(req, list(req.system))})
    pending_images: list = []
    for message in req.messages:
        if message.role != "tool" and pending_images:
            out.append({"role": "user", "content": _encode_parts(req, pending_images)})
            pending_images = []
        if message.role == "system":
            out.append({"role": "system", "content": message.text()})
        elif message.role == "user":
            item = {"role": "user", "content": _encode_parts(req, message.parts)}
            if message.name:
                item["name"] = message.name
            out.append(item)
        elif message.role == "assistant":
            out.append(_encode_assistant(req, message, same_dialect))
        else:
            for result in message.parts:
                if not isinstance(result, ToolResultPart):
                    continue
                texts = [p for p in result.content if isinstance(p, TextPart)]
                images = [p for p in result.content if not isinstance(p, TextPart)]
                content = "".join(p.text for p in texts)
                if result.is_error and not content.lower().startswith("error"):
                    content = "Error: " + content
                out.append(
                    {"role": "tool", "tool_call_id": result.tool_call_id, "content": content}
                )
                if images:
                    pending_images += [
                        TextPart(f"Images returned by tool call {result.tool_call_id}:")
                    ] + images
    if pending_images:
        out.append({"role": "user", "content": _encode_parts(req, pending_images)})
    return out


def _encode_assistant(req: NeutralRequest, message: Message, same_dialect: bool) -> dict:
    item: dict[str, Any] = {"role": "assistant"}
    texts = [p for p in message.parts if isinstance(p, TextPart)]
    item["content"] = "".join(p.text for p in texts) if texts else None
    reasoning = [p for p in message.parts if isinstance(p, ReasoningPart)]
    if reasoning:
        if same_dialect:
            encode_reasoning_fields(item, reasoning)
        else:
            req.drop("messages[].reasoning")
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    if calls:
        item["tool_calls"] = [encode_tool_call(req, c, to_client=False) for c in calls]
    if message.name:
        item["name"] = message.name
    return item


def encode_tools(req: NeutralRequest, same_dialect: bool) -> list[dict]:
    tools = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "openai_chat":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        function: dict[str, Any] = {"name": req.tool_names.to_upstream(tool.name, OPENAI_NAME)}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        if tool.strict is not None:
            function["strict"] = tool.strict
        item = {"type": "function", "function": function}
        if tool.cache_control and same_dialect:
            item["cache_control"] = tool.cache_control
        tools.append(item)
    return tools


def encode_tool_choice(req: NeutralRequest, choice: ToolChoice) -> Any:
    if choice.mode == "tool" and choice.name:
        return {
            "type": "function",
            "function": {"name": req.tool_names.to_upstream(choice.name, OPENAI_NAME)},
        }
    return choice.mode if choice.mode != "tool" else "required"


def encode_response_format(fmt: ResponseFormat) -> dict:
    if fmt.type == "json_schema":
        spec: dict[str, Any] = {
            "name": fmt.name or "response",
            "schema": fmt.schema or {"type": "object"},
        }
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    return {"type": fmt.type}
