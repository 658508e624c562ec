"""NeutralRequest -> Anthropic Messages request body (for an upstream)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from apex_ai_proxy.dialects.base import budget_of, json_text, parse_arguments
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    NeutralRequest,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from apex_ai_proxy.dialects.toolnames import ANTHROPIC_NAME

DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024

JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


def _nonblank(text: str) -> bool:
    return bool(text and text.strip())


def _text_block(part: TextPart) -> dict:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _media_block(req: NeutralRequest, part: ImagePart | FilePart) -> dict | None:
    if isinstance(part, ImagePart):
        if part.data is not None:
            source = {
                "type": "base64",
                "media_type": part.media_type or "image/png",
                "data": part.data,
            }
        else:
            source = {"type": "url", "url": part.url}
        block: dict[str, Any] = {"type": "image", "source": source}
    else:
        if part.file_id:
            source = {"type": "file", "file_id": part.file_id}
        elif part.url:
            source = {"type": "url", "url": part.url}
        elif (part.media_type or "").startswith("text/"):
            try:
                text = base64.b64decode(part.data or "").decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                req.drop("messages[].content.file")
                return None
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            source = {
                "type": "base64",
                "media_type": part.media_type or "application/pdf",
                "data": part.data or "",
            }
        block = {"type": "document", "source": source}
        if part.filename:
            block["title"] = part.filename
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _content_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    blocks = []
    for part in parts:
        if isinstance(part, TextPart):
            if _nonblank(part.text):
                blocks.append(_text_block(part))
        elif isinstance(part, ImagePart | FilePart):
            block = _media_block(req, part)
            if block:
                blocks.append(block)
    return blocks


def _tool_result_block(req: NeutralRequest, result: ToolResultPart) -> dict:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_call_id}
    content = _content_blocks(req, result.content)
    if content:
        only_text = all(b["type"] == "text" and "cache_control" not in b for b in content)
        block["content"] = "".join(b["text"] for b in content) if only_text else content
    if result.is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    thinking, rest = [], []
    for part in parts:
        if isinstance(part, ReasoningPart):
            if part.redacted:
                thinking.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.signature:
                thinking.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature}
                )
            elif part.text:
                req.drop("messages[].reasoning")
        elif isinstance(part, ToolCallPart):
            name = req.tool_names.to_upstream(part.name, ANTHROPIC_NAME)
            rest.append(
                {
                    "type": "tool_use",
                    "id": part.id,
                    "name": name,
                    "input": parse_arguments(part.arguments),
                }
            )
        elif isinstance(part, TextPart) and _nonblank(part.text):
            rest.append(_text_block(part))
    return thinking + rest


def _push(turns: list[dict], role: str, blocks: list[dict]) -> None:
    """Append blocks, merging with the previous turn of the same role; tool results go first."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        merged = turns[-1]["content"] + blocks
        results = [b for b in merged if b["type"] == "tool_result"]
        turns[-1]["content"] = results + [b for b in merged if b["type"] != "tool_result"]
    else:
        turns.append({"role": role, "content": blocks})


def encode_messages(req: NeutralRequest) -> list[dict]:
    turns: list[dict] = []
    for message in req.messages:
        if message.role == "assistant":
            _push(turns, "assistant", _assistant_blocks(req, message.parts))
        elif message.role == "tool":
            blocks = [
                _tool_result_block(req, p) for p in message.parts if isinstance(p, ToolResultPart)
            ]
            _push(turns, "user", blocks)
        elif message.role == "system":
            text = message.text()
            if _nonblank(text):
                _push(
                    turns,
                    "user",
                    [{"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"}],
                )
        else:
            _push(turns, "user", _content_blocks(req, message.parts))
    _strip_final_assistant(turns)
    return turns


def _strip_final_assistant(turns: list[dict]) -> None:
    """A final assistant turn (prefill) must not end with whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    last = turns[-1]["content"][-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()


def encode_system(req: NeutralRequest, instruction: str | None) -> Any:
    blocks = [_text_block(p) for p in req.system if _nonblank(p.text)]
    if instruction:
        blocks.append({"type": "text", "text": instruction})
    if not blocks:
        return None
    if all("cache_control" not in b for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def json_instruction(fmt: ResponseFormat | None) -> str | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema" and fmt.schema:
        return f"{JSON_INSTRUCTION} It must match this JSON schema: {json_text(fmt.schema)}"
    return JSON_INSTRUCTION


def encode_tools(req: NeutralRequest) -> list[dict]:
    tools = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "anthropic":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        schema = dict(tool.parameters or {"type": "object", "properties": {}})
        schema.setdefault("type", "object")
        item: dict[str, Any] = {
            "name": req.tool_names.to_upstream(tool.name, ANTHROPIC_NAME),
            "input_schema": schema,
        }
        if tool.description:
            item["description"] = tool.description
        if tool.cache_control:
            item["cache_control"] = tool.cache_control
        tools.append(item)
    return tools


def encode_tool_choice(req: NeutralRequest, thinking: bool) -> dict | None:
    choice = req.tool_choice
    out: dict[str, Any] | None = None
    if choice is not None:
        if thinking and choice.mode in ("required", "tool"):
            req.drop("tool_choice")
            out = {"type": "auto"}
        elif choice.mode == "tool" and choice.name:
            out = {"type": "tool", "name": req.tool_names.to_upstream(choice.name, ANTHROPIC_NAME)}
        else:
            out = {
                "type": {"auto": "auto", "required": "any", "none": "none"}.get(choice.mode, "auto")
            }
    if req.parallel_tool_calls is False and req.tools:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def encode_thinking(req: NeutralRequest, body: dict, same: bool) -> bool:
    """Sets `thinking` and `max_tokens`; True when thinking is on."""
    reasoning = req.reasoning
    on = (
        reasoning is not None
        and reasoning.mode in ("enabled", "adaptive")
        and reasoning.effort != "none"
    )
    if not on:
        body["max_tokens"] = req.max_tokens or DEFAULT_MAX_TOKENS
        if same and reasoning is not None and reasoning.mode == "disabled":
            body["thinking"] = {"type": "disabled"}
        return False
    assert reasoning is not None
    if reasoning.mode == "adaptive" and same:
        body["thinking"] = {"type": "adaptive"}
        body["max_tokens"] = req.max_tokens or DEFAULT_MAX_TOKENS
        return True
    budget = budget_of(reasoning.effort, reasoning.budget_tokens)
    if req.max_tokens is None:
        body["max_tokens"] = budget + DEFAULT_MAX_TOKENS
    else:
        body["max_tokens"] = req.max_tokens
        budget = min(budget, req.max_tokens - 1)
        if budget < MIN_THINKING_BUDGET:
            req.drop("reasoning")
            return False
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True
