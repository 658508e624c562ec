"""OpenAI Chat Completions request body (a client's) -> NeutralRequest."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import (
    expect,
    json_text,
    new_id,
    normalize_arguments,
    opt,
    split_data_url,
    text_field,
)
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


def _decode_image(item: dict, at: str) -> ImagePart:
    image = item.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    expect(url, str, f"{at}.image_url.url")
    detail = (
        opt(image, "detail", str, f"{at}.image_url.detail") if isinstance(image, dict) else None
    )
    cache = opt(item, "cache_control", dict, f"{at}.cache_control")
    inline = split_data_url(url)
    if inline:
        return ImagePart(inline[0], inline[1], detail=detail, cache_control=cache)
    return ImagePart(url=url, detail=detail, cache_control=cache)


def _decode_file(item: dict, at: str) -> FilePart:
    at = f"{at}.file"
    file = expect(item.get("file"), dict, at)
    file_data = opt(file, "file_data", str, f"{at}.file_data")
    inline = split_data_url(file_data or "")
    return FilePart(
        media_type=inline[0] if inline else None,
        data=inline[1] if inline else file_data,
        file_id=opt(file, "file_id", str, f"{at}.file_id"),
        filename=opt(file, "filename", str, f"{at}.filename"),
    )


def decode_parts(content: Any, where: str) -> list:
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
            text = expect(item.get("text"), str, f"{at}.text")
            parts.append(TextPart(text, opt(item, "cache_control", dict, f"{at}.cache_control")))
        elif kind == "refusal":
            parts.append(TextPart(str(item.get("refusal") or "")))
        elif kind == "image_url":
            parts.append(_decode_image(item, at))
        elif kind == "file":
            parts.append(_decode_file(item, at))
        else:
            raise BadRequest(f"'{at}.type' {kind!r} is not supported", param=f"{at}.type")
    return parts


def decode_reasoning(message: dict) -> list[ReasoningPart]:
    """Reasoning an assistant turn carries back (OpenRouter details, DeepSeek content…);
    lenient: what is not a string is left out."""
    details = message.get("reasoning_details")
    if isinstance(details, list) and details:
        parts = []
        for d in details:
            if not isinstance(d, dict):
                continue
            if d.get("type") == "reasoning.encrypted":
                parts.append(ReasoningPart(redacted=text_field(d.get("data")) or None))
            elif d.get("type") == "reasoning.summary":
                parts.append(ReasoningPart(summary=[text_field(d.get("summary"))]))
            else:
                signature = text_field(d.get("signature")) or None
                parts.append(ReasoningPart(text_field(d.get("text")), signature))
        return parts
    text = message.get("reasoning_content")
    if not isinstance(text, str):
        text = message.get("reasoning") if isinstance(message.get("reasoning"), str) else None
    signature = message.get("reasoning_signature")
    if text or signature:
        return [ReasoningPart(text or "", signature if isinstance(signature, str) else None)]
    return []


def decode_tool_calls(calls: Any, where: str) -> list[ToolCallPart]:
    expect(calls, list, where)
    parts = []
    for i, call in enumerate(calls):
        at = f"{where}[{i}]"
        expect(call, dict, at)
        function = expect(call.get("function"), dict, f"{at}.function")
        name = expect(function.get("name"), str, f"{at}.function.name")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json_text(arguments)  # tolerate hosts that send an object
        extra = opt(call, "extra_content", dict, f"{at}.extra_content") or {}
        google = opt(extra, "google", dict, f"{at}.extra_content.google") or {}
        signature = opt(
            google, "thought_signature", str, f"{at}.extra_content.google.thought_signature"
        )
        call_id = opt(call, "id", str, f"{at}.id") or new_id("call_")
        parts.append(ToolCallPart(call_id, name, normalize_arguments(arguments), signature))
    return parts


def decode_messages(req: NeutralRequest, messages: list) -> None:
    call_names: dict[str, str] = {}
    leading = True
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        expect(message, dict, at)
        role = message.get("role")
        if role in ("system", "developer"):
            parts = [
                p
                for p in decode_parts(message.get("content"), f"{at}.content")
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
                    decode_parts(message.get("content"), f"{at}.content"),
                    opt(message, "name", str, f"{at}.name"),
                )
            )
        elif role == "assistant":
            parts: list = list(decode_reasoning(message))
            parts += decode_parts(message.get("content"), f"{at}.content")
            if message.get("refusal"):
                parts.append(TextPart(str(message["refusal"])))
            if message.get("tool_calls"):
                calls = decode_tool_calls(message["tool_calls"], f"{at}.tool_calls")
                call_names.update((c.id, c.name) for c in calls)
                parts += calls
            req.messages.append(
                Message("assistant", parts, opt(message, "name", str, f"{at}.name"))
            )
        elif role == "tool":
            call_id = expect(message.get("tool_call_id"), str, f"{at}.tool_call_id")
            content = decode_parts(message.get("content"), f"{at}.content")
            result = ToolResultPart(call_id, content, name=call_names.get(call_id))
            req.messages.append(Message("tool", [result]))
        else:
            raise BadRequest(
                f"'{at}.role' must be system, developer, user, assistant or tool",
                param=f"{at}.role",
            )


def decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        expect(tool, dict, at)
        if tool.get("type", "function") != "function":
            req.tools.append(ToolSpec(str(tool.get("type")), raw=tool, raw_dialect="openai_chat"))
            continue
        function = expect(tool.get("function"), dict, f"{at}.function")
        at = f"{at}.function"
        req.tools.append(
            ToolSpec(
                expect(function.get("name"), str, f"{at}.name"),
                opt(function, "description", str, f"{at}.description"),
                opt(function, "parameters", dict, f"{at}.parameters"),
                opt(function, "strict", bool, f"{at}.strict"),
                opt(tool, "cache_control", dict, f"tools[{i}].cache_control"),
            )
        )


def decode_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ("auto", "none", "required"):
        return ToolChoice(value)  # type: ignore[arg-type]
    if isinstance(value, dict):
        function = opt(value, "function", dict, "tool_choice.function")
        if function is not None:
            return ToolChoice(
                "tool", expect(function.get("name"), str, "tool_choice.function.name")
            )
        if value.get("type") == "allowed_tools":
            allowed = opt(value, "allowed_tools", dict, "tool_choice.allowed_tools") or {}
            mode = allowed.get("mode", "auto")
            if mode not in ("auto", "required"):
                raise BadRequest(
                    "'tool_choice.allowed_tools.mode' must be auto or required",
                    param="tool_choice.allowed_tools.mode",
                )
            return ToolChoice(mode)
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a named function", param="tool_choice"
    )


def decode_response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    expect(value, dict, "response_format")
    kind = value.get("type")
    if kind == "json_schema":
        spec = expect(value.get("json_schema"), dict, "response_format.json_schema")
        at = "response_format.json_schema"
        return ResponseFormat(
            "json_schema",
            opt(spec, "schema", dict, f"{at}.schema"),
            opt(spec, "name", str, f"{at}.name"),
            opt(spec, "strict", bool, f"{at}.strict"),
        )
    if kind in ("json_object", "text"):
        return ResponseFormat(kind)
    raise BadRequest(
        "'response_format.type' must be text, json_object or json_schema",
        param="response_format.type",
    )
