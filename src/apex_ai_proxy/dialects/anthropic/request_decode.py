"""Anthropic Messages request body (a client's) -> NeutralRequest."""

from __future__ import annotations

import base64
from typing import Any

from apex_ai_proxy.dialects.base import expect, json_text, normalize_arguments
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    Message,
    NeutralRequest,
    Reasoning,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from apex_ai_proxy.errors import BadRequest


def _decode_source(block: dict, at: str) -> dict:
    return expect(block.get("source"), dict, f"{at}.source")


def _decode_block(req: NeutralRequest, block: Any, at: str) -> Any:
    if isinstance(block, str):
        return TextPart(block)
    expect(block, dict, at)
    kind = block.get("type")
    cache = block.get("cache_control")
    if kind == "text":
        return TextPart(expect(block.get("text"), str, f"{at}.text"), cache)
    if kind == "image":
        source = _decode_source(block, at)
        if source.get("type") == "url":
            return ImagePart(url=source.get("url"), cache_control=cache)
        if source.get("type") == "base64":
            return ImagePart(source.get("media_type"), source.get("data"), cache_control=cache)
        return FilePart(file_id=source.get("file_id"), cache_control=cache)
    if kind == "document":
        source = _decode_source(block, at)
        stype = source.get("type")
        if stype == "text":
            data = base64.b64encode(str(source.get("data") or "").encode()).decode()
            return FilePart("text/plain", data, filename=block.get("title"), cache_control=cache)
        if stype == "url":
            return FilePart(url=source.get("url"), filename=block.get("title"), cache_control=cache)
        if stype == "file":
            return FilePart(
                file_id=source.get("file_id"), filename=block.get("title"), cache_control=cache
            )
        return FilePart(
            source.get("media_type"),
            source.get("data"),
            filename=block.get("title"),
            cache_control=cache,
        )
    if kind == "tool_use":
        name = expect(block.get("name"), str, f"{at}.name")
        arguments = json_text(block.get("input") or {})
        return ToolCallPart(
            expect(block.get("id"), str, f"{at}.id"), name, normalize_arguments(arguments)
        )
    if kind == "tool_result":
        content = block.get("content")
        parts = (
            []
            if content is None
            else [
                _decode_block(req, b, f"{at}.content")
                for b in ([content] if isinstance(content, str) else content)
            ]
        )
        return ToolResultPart(
            expect(block.get("tool_use_id"), str, f"{at}.tool_use_id"),
            [p for p in parts if isinstance(p, TextPart | ImagePart | FilePart)],
            bool(block.get("is_error")),
        )
    if kind == "thinking":
        return ReasoningPart(str(block.get("thinking") or ""), block.get("signature"))
    if kind == "redacted_thinking":
        return ReasoningPart(redacted=block.get("data"))
    req.drop(f"messages[].content.{kind}")
    return None


def _decode_content(req: NeutralRequest, content: Any, at: str) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    expect(content, list, at)
    parts = (_decode_block(req, b, f"{at}[{i}]") for i, b in enumerate(content))
    return [p for p in parts if p is not None]


def _decode_messages(req: NeutralRequest, messages: list) -> None:
    names: dict[str, str] = {}
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        expect(message, dict, at)
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise BadRequest(f"'{at}.role' must be user or assistant", param=f"{at}.role")
        parts = _decode_content(req, message.get("content"), f"{at}.content")
        if role == "system":
            texts = [p for p in parts if isinstance(p, TextPart)]
            if req.messages:
                req.messages.append(Message("system", texts))
            else:
                req.system.extend(texts)
            continue
        if role == "assistant":
            names.update((p.id, p.name) for p in parts if isinstance(p, ToolCallPart))
            req.messages.append(Message("assistant", parts))
            continue
        results = [p for p in parts if isinstance(p, ToolResultPart)]
        for result in results:
            result.name = names.get(result.tool_call_id)
        if results:
            req.messages.append(Message("tool", results))
        rest = [p for p in parts if not isinstance(p, ToolResultPart)]
        if rest or not results:
            req.messages.append(Message("user", rest))


def _decode_system(req: NeutralRequest, system: Any) -> None:
    if system is None:
        return
    if isinstance(system, str):
        req.system.append(TextPart(system))
        return
    expect(system, list, "system")
    for i, block in enumerate(system):
        expect(block, dict, f"system[{i}]")
        req.system.append(
            TextPart(
                expect(block.get("text"), str, f"system[{i}].text"), block.get("cache_control")
            )
        )


def _decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        expect(tool, dict, f"tools[{i}]")
        name = expect(tool.get("name"), str, f"tools[{i}].name")
        if tool.get("type") not in (None, "custom"):
            req.tools.append(ToolSpec(name, raw=tool, raw_dialect="anthropic"))
            continue
        req.tools.append(
            ToolSpec(
                name,
                tool.get("description"),
                tool.get("input_schema"),
                tool.get("strict"),
                tool.get("cache_control"),
            )
        )


def _decode_tool_choice(req: NeutralRequest, value: Any) -> None:
    if value is None:
        return
    expect(value, dict, "tool_choice")
    kind = value.get("type")
    modes = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}
    if kind not in modes:
        raise BadRequest(
            "'tool_choice.type' must be auto, any, tool or none", param="tool_choice.type"
        )
    req.tool_choice = ToolChoice(modes[kind], value.get("name") if kind == "tool" else None)
    if value.get("disable_parallel_tool_use") is not None:
        req.parallel_tool_calls = not value["disable_parallel_tool_use"]


def _decode_thinking(req: NeutralRequest, body: dict) -> None:
    thinking = body.get("thinking")
    effort = (
        (body.get("output_config") or {}).get("effort")
        if isinstance(body.get("output_config"), dict)
        else None
    )
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            req.reasoning = Reasoning(
                "enabled", effort, budget if isinstance(budget, int) else None, True
            )
        elif kind == "adaptive":
            req.reasoning = Reasoning("adaptive", effort, include_thoughts=True)
        elif kind == "disabled":
            req.reasoning = Reasoning("disabled")
    elif effort:
        req.reasoning = Reasoning("adaptive", effort)
