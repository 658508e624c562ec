"""NeutralRequest -> Responses request body (a client of another dialect, a Responses
upstream)."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import data_url, normalize_arguments
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    NeutralRequest,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from apex_ai_proxy.dialects.responses.ids import gateway_id, is_gateway_id
from apex_ai_proxy.dialects.responses.reasoning_tokens import reasoning_token
from apex_ai_proxy.dialects.toolnames import OPENAI_NAME


def _encode_content(parts: list, role: str) -> list[dict]:
    text_type = "output_text" if role == "assistant" else "input_text"
    out: list[dict] = []
    for p in parts:
        if isinstance(p, TextPart):
            item: dict[str, Any] = {"type": text_type, "text": p.text}
            if role == "assistant":
                item["annotations"] = []
            out.append(item)
        elif isinstance(p, ImagePart):
            url = data_url(p.media_type, p.data) if p.data is not None else p.url
            out.append({"type": "input_image", "image_url": url, "detail": p.detail or "auto"})
        elif isinstance(p, FilePart):
            file: dict[str, Any] = {"type": "input_file"}
            if p.file_id:
                file["file_id"] = p.file_id
            elif p.data is not None:
                file["file_data"] = data_url(p.media_type, p.data)
            elif p.url:
                file["file_url"] = p.url
            if p.filename:
                file["filename"] = p.filename
            out.append(file)
    return out


def encode_reasoning_item(part: ReasoningPart, with_id: bool) -> dict:
    summary = part.summary or ([part.text] if part.text else [])
    item: dict[str, Any] = {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": s} for s in summary],
    }
    if with_id:
        item["id"] = part.id or gateway_id("rs_")
    token = reasoning_token(part)
    if token is not None:
        item["encrypted_content"] = token
    return item


def _encode_tool_output(result: ToolResultPart) -> str | list[dict]:
    if all(isinstance(p, TextPart) for p in result.content):
        text = result.text()
        if result.is_error and not text.lower().startswith("error"):
            text = "Error: " + text
        return text
    return _encode_content(result.content, "user")


def encode_input(req: NeutralRequest) -> list[dict]:
    """Neutral messages as Responses input items (for a Responses upstream)."""
    items: list[dict] = []
    for message in req.messages:
        if message.role in ("user", "system"):
            role = "developer" if message.role == "system" else "user"
            items.append({"role": role, "content": _encode_content(message.parts, message.role)})
        elif message.role == "assistant":
            texts: list = []
            for part in message.parts:
                if isinstance(part, TextPart):
                    texts.append(part)
                    continue
                if texts:
                    items.append(_assistant_message(texts))
                    texts = []
                if isinstance(part, ReasoningPart):
                    if part.encrypted_content or (part.id and not is_gateway_id(part.id)):
                        items.append(encode_reasoning_item(part, with_id=bool(part.id)))
                    else:
                        req.drop("messages[].reasoning")
                elif isinstance(part, ToolCallPart):
                    name = req.tool_names.to_upstream(part.name, OPENAI_NAME)
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": part.id,
                            "name": name,
                            "arguments": normalize_arguments(part.arguments),
                        }
                    )
            if texts:
                items.append(_assistant_message(texts))
        else:
            for result in message.parts:
                if isinstance(result, ToolResultPart):
                    items.append(
                        {
                            "type": "function_call_output",
                            "call_id": result.tool_call_id,
                            "output": _encode_tool_output(result),
                        }
                    )
    return items


def _assistant_message(texts: list[TextPart]) -> dict:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": t.text, "annotations": []} for t in texts],
    }


def encode_tools(req: NeutralRequest) -> list[dict]:
    tools: list[dict] = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "responses":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        item: dict[str, Any] = {
            "type": "function",
            "name": req.tool_names.to_upstream(tool.name, OPENAI_NAME),
            "parameters": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            item["description"] = tool.description
        if tool.strict is not None:
            item["strict"] = tool.strict
        tools.append(item)
    return tools


def encode_tool_choice(req: NeutralRequest, choice: ToolChoice) -> Any:
    if choice.mode == "tool" and choice.name:
        return {"type": "function", "name": req.tool_names.to_upstream(choice.name, OPENAI_NAME)}
    return choice.mode if choice.mode != "tool" else "auto"


def encode_format(fmt: ResponseFormat) -> dict:
    if fmt.type == "json_schema":
        out: dict[str, Any] = {
            "type": "json_schema",
            "name": fmt.name or "response",
            "schema": fmt.schema or {"type": "object"},
        }
        if fmt.strict is not None:
            out["strict"] = fmt.strict
        return out
    return {"type": fmt.type}
