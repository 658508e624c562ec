"""Anthropic Messages request body (a client's) -> NeutralRequest."""

from __future__ import annotations

import base64
from typing import Any

from apex_ai_proxy.dialects.base import expect, json_text, normalize_arguments, opt
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


def _decode_image(source: dict, cache: dict | None, at: str) -> ImagePart | FilePart:
    kind = source.get("type")
    if kind == "url":
        return ImagePart(url=expect(source.get("url"), str, f"{at}.url"), cache_control=cache)
    if kind == "base64":
        media_type = opt(source, "media_type", str, f"{at}.media_type")
        return ImagePart(
            media_type, expect(source.get("data"), str, f"{at}.data"), cache_control=cache
        )
    return FilePart(file_id=opt(source, "file_id", str, f"{at}.file_id"), cache_control=cache)


def _decode_document(block: dict, source: dict, cache: dict | None, at: str) -> FilePart:
    title = opt(block, "title", str, f"{at}.title")
    kind = source.get("type")
    at = f"{at}.source"
    if kind == "text":
        text = opt(source, "data", str, f"{at}.data") or ""
        data = base64.b64encode(text.encode()).decode()
        return FilePart("text/plain", data, filename=title, cache_control=cache)
    if kind == "url":
        url = expect(source.get("url"), str, f"{at}.url")
        return FilePart(url=url, filename=title, cache_control=cache)
    if kind == "file":
        file_id = expect(source.get("file_id"), str, f"{at}.file_id")
        return FilePart(file_id=file_id, filename=title, cache_control=cache)
    return FilePart(
        opt(source, "media_type", str, f"{at}.media_type"),
        opt(source, "data", str, f"{at}.data"),
        filename=title,
        cache_control=cache,
    )


def _decode_tool_result(req: NeutralRequest, block: dict, at: str) -> ToolResultPart:
    content = block.get("content")
    if content is None:
        parts = []
    elif isinstance(content, str):
        parts = [TextPart(content)]
    else:
        expect(content, list, f"{at}.content")
        parts = [decode_block(req, b, f"{at}.content[{i}]") for i, b in enumerate(content)]
    return ToolResultPart(
        expect(block.get("tool_use_id"), str, f"{at}.tool_use_id"),
        [p for p in parts if isinstance(p, TextPart | ImagePart | FilePart)],
        bool(block.get("is_error")),
    )


def decode_block(req: NeutralRequest, block: Any, at: str) -> Any:
    if isinstance(block, str):
        return TextPart(block)
    expect(block, dict, at)
    kind = block.get("type")
    cache = opt(block, "cache_control", dict, f"{at}.cache_control")
    if kind == "text":
        return TextPart(expect(block.get("text"), str, f"{at}.text"), cache)
    if kind == "image":
        return _decode_image(_decode_source(block, at), cache, f"{at}.source")
    if kind == "document":
        return _decode_document(block, _decode_source(block, at), cache, at)
    if kind == "tool_use":
        name = expect(block.get("name"), str, f"{at}.name")
        arguments = json_text(block.get("input") or {})
        return ToolCallPart(
            expect(block.get("id"), str, f"{at}.id"), name, normalize_arguments(arguments)
        )
    if kind == "tool_result":
        return _decode_tool_result(req, block, at)
    if kind == "thinking":
        text = opt(block, "thinking", str, f"{at}.thinking") or ""
        return ReasoningPart(text, opt(block, "signature", str, f"{at}.signature"))
    if kind == "redacted_thinking":
        return ReasoningPart(redacted=opt(block, "data", str, f"{at}.data"))
    req.drop(f"messages[].content.{kind if isinstance(kind, str) else 'unknown'}")
    return None


def _decode_content(req: NeutralRequest, content: Any, at: str) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    expect(content, list, at)
    parts = (decode_block(req, b, f"{at}[{i}]") for i, b in enumerate(content))
    return [p for p in parts if p is not None]


def decode_messages(req: NeutralRequest, messages: list) -> None:
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


def decode_system(req: NeutralRequest, system: Any) -> None:
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
                expect(block.get("text"), str, f"system[{i}].text"),
                opt(block, "cache_control", dict, f"system[{i}].cache_control"),
            )
        )


def decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        expect(tool, dict, f"tools[{i}]")
        name = expect(tool.get("name"), str, f"tools[{i}].name")
        if tool.get("type") not in (None, "custom"):
            req.tools.append(ToolSpec(name, raw=tool, raw_dialect="anthropic"))
            continue
        at = f"tools[{i}]"
        req.tools.append(
            ToolSpec(
                name,
                opt(tool, "description", str, f"{at}.description"),
                opt(tool, "input_schema", dict, f"{at}.input_schema"),
                opt(tool, "strict", bool, f"{at}.strict"),
                opt(tool, "cache_control", dict, f"{at}.cache_control"),
            )
        )


def decode_tool_choice(req: NeutralRequest, value: Any) -> None:
    if value is None:
        return
    expect(value, dict, "tool_choice")
    kind = value.get("type")
    modes = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}
    if not isinstance(kind, str) or kind not in modes:
        raise BadRequest(
            "'tool_choice.type' must be auto, any, tool or none", param="tool_choice.type"
        )
    name = expect(value.get("name"), str, "tool_choice.name") if kind == "tool" else None
    req.tool_choice = ToolChoice(modes[kind], name)
    disable = opt(value, "disable_parallel_tool_use", bool, "tool_choice.disable_parallel_tool_use")
    if disable is not None:
        req.parallel_tool_calls = not disable


def decode_thinking(req: NeutralRequest, body: dict) -> None:
    thinking = body.get("thinking")
    output = body.get("output_config")
    effort = (
        opt(output, "effort", str, "output_config.effort") if isinstance(output, dict) else None
    )
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = opt(thinking, "budget_tokens", int, "thinking.budget_tokens")
            req.reasoning = Reasoning("enabled", effort, budget, True)
        elif kind == "adaptive":
            req.reasoning = Reasoning("adaptive", effort, include_thoughts=True)
        elif kind == "disabled":
            req.reasoning = Reasoning("disabled")
    elif effort:
        req.reasoning = Reasoning("adaptive", effort)
