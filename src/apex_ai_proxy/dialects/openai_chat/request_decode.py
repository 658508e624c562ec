"""OpenAI Chat Completions request body (a client's) -> NeutralRequest."""

from __future__ import annotations

from typing import Any

import orjson

from apex_ai_proxy.dialects.base import expect, new_id, normalize_arguments, split_data_url
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    Message,
    NeutralRequest,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from apex_ai_proxy.errors import BadRequest


def _decode_parts(content: Any, where: str) -> list:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    expect(content, list, where)
    parts: list = []
    for i, item in enumerate(content):
        at = f"{where}[{i}]"
        expect(item, dict, at)
        kind = item.get("type")
        if kind == "text":
            parts.append(
                TextPart(expect(item.get("text"), str, f"{at}.text"), item.get("cache_control"))
            )
        elif kind == "refusal":
            parts.append(TextPart(str(item.get("refusal") or "")))
        elif kind == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            expect(url, str, f"{at}.image_url.url")
            detail = image.get("detail") if isinstance(image, dict) else None
            inline = split_data_url(url)
            if inline:
                parts.append(
                    ImagePart(
                        inline[0], inline[1], detail=detail, cache_control=item.get("cache_control")
                    )
                )
            else:
                parts.append(
                    ImagePart(url=url, detail=detail, cache_control=item.get("cache_control"))
                )
        elif kind == "file":
            file = expect(item.get("file"), dict, f"{at}.file")
            inline = split_data_url(file.get("file_data") or "")
            parts.append(
                FilePart(
                    media_type=inline[0] if inline else None,
                    data=inline[1] if inline else file.get("file_data"),
                    file_id=file.get("file_id"),
                    filename=file.get("filename"),
                )
            )
        else:
            raise BadRequest(f"'{at}.type' {kind!r} is not supported", param=f"{at}.type")
    return parts


def _decode_reasoning(message: dict) -> list[ReasoningPart]:
    details = message.get("reasoning_details")
    if isinstance(details, list) and details:
        parts = []
        for d in details:
            if not isinstance(d, dict):
                continue
            if d.get("type") == "reasoning.encrypted":
                parts.append(ReasoningPart(redacted=d.get("data")))
            elif d.get("type") == "reasoning.summary":
                parts.append(ReasoningPart(summary=[d.get("summary") or ""]))
            else:
                parts.append(ReasoningPart(d.get("text") or "", d.get("signature")))
        return parts
    text = message.get("reasoning_content")
    if not isinstance(text, str):
        text = message.get("reasoning") if isinstance(message.get("reasoning"), str) else None
    signature = message.get("reasoning_signature")
    if text or signature:
        return [ReasoningPart(text or "", signature if isinstance(signature, str) else None)]
    return []


def _decode_tool_calls(calls: Any, where: str) -> list[ToolCallPart]:
    expect(calls, list, where)
    parts = []
    for i, call in enumerate(calls):
        at = f"{where}[{i}]"
        expect(call, dict, at)
        function = expect(call.get("function"), dict, f"{at}.function")
        name = expect(function.get("name"), str, f"{at}.function.name")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()  # tolerate hosts that send an object
        google = (call.get("extra_content") or {}).get("google") or {}
        parts.append(
            ToolCallPart(
                call.get("id") or new_id("call_"),
                name,
                normalize_arguments(arguments),
                google.get("thought_signature"),
            )
        )
    return parts


def _decode_messages(req: NeutralRequest, messages: list) -> None:
    call_names: dict[str, str] = {}
    leading = True
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        expect(message, dict, at)
        role = message.get("role")
        if role in ("system", "developer"):
            parts = [
                p
                for p in _decode_parts(message.get("content"), f"{at}.content")
                if isinstance(p, TextPart)
            ]
            if leading:
                req.system.extend(parts)
            else:
                req.messages.append(Message("system", parts))
            continue
        leading = False
        if role == "user":
            req.messages.append(
                Message(
                    "user",
                    _decode_parts(message.get("content"), f"{at}.content"),
                    message.get("name"),
                )
            )
        elif role == "assistant":
            parts: list = list(_decode_reasoning(message))
            parts += _decode_parts(message.get("content"), f"{at}.content")
            if message.get("refusal"):
                parts.append(TextPart(str(message["refusal"])))
            if message.get("tool_calls"):
                calls = _decode_tool_calls(message["tool_calls"], f"{at}.tool_calls")
                call_names.update((c.id, c.name) for c in calls)
                parts += calls
            req.messages.append(Message("assistant", parts, message.get("name")))
        elif role == "tool":
            call_id = expect(message.get("tool_call_id"), str, f"{at}.tool_call_id")
            content = _decode_parts(message.get("content"), f"{at}.content")
            result = ToolResultPart(call_id, content, name=call_names.get(call_id))
            req.messages.append(Message("tool", [result]))
        else:
            raise BadRequest(
                f"'{at}.role' must be system, developer, user, assistant or tool",
                param=f"{at}.role",
            )


def _decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        expect(tool, dict, at)
        if tool.get("type", "function") != "function":
            req.tools.append(ToolSpec(str(tool.get("type")), raw=tool, raw_dialect="openai_chat"))
            continue
        function = expect(tool.get("function"), dict, f"{at}.function")
        req.tools.append(
            ToolSpec(
                expect(function.get("name"), str, f"{at}.function.name"),
                function.get("description"),
                function.get("parameters"),
                function.get("strict"),
                tool.get("cache_control"),
            )
        )


def _decode_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict):
        name = (value.get("function") or {}).get("name")
        if isinstance(name, str):
            return ToolChoice("tool", name)
        if value.get("type") == "allowed_tools":
            return ToolChoice((value.get("allowed_tools") or {}).get("mode", "auto"))
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a named function", param="tool_choice"
    )


def _decode_response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    expect(value, dict, "response_format")
    kind = value.get("type")
    if kind == "json_schema":
        spec = expect(value.get("json_schema"), dict, "response_format.json_schema")
        return ResponseFormat(
            "json_schema", spec.get("schema"), spec.get("name"), spec.get("strict")
        )
    if kind in ("json_object", "text"):
        return ResponseFormat(kind)
    raise BadRequest(
        "'response_format.type' must be text, json_object or json_schema",
        param="response_format.type",
    )
