"""Gemini generateContent request body (a client's) -> NeutralRequest."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import expect, json_text, new_id, opt, stop_list
from apex_ai_proxy.dialects.gemini.request_encode import SKIP_SIGNATURE
from apex_ai_proxy.dialects.gemini.response import upstream_signature
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
    ToolSpec,
)
from apex_ai_proxy.errors import BadRequest


def camel_or_snake(d: dict, camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


class PendingCalls:
    """Pairs functionResponse parts with the calls of the previous model turn."""

    def __init__(self) -> None:
        self.pending: list[ToolCallPart] = []

    def add(self, call: ToolCallPart) -> None:
        self.pending.append(call)

    def match(self, name: str, call_id: str | None) -> str:
        for i, call in enumerate(self.pending):
            if (call_id and call.id == call_id) or (not call_id and call.name == name):
                return self.pending.pop(i).id
        return call_id or new_id("call_")


def _opt(d: dict, camel: str, snake: str, kind: type | tuple[type, ...], at: str) -> Any:
    """`camel_or_snake` with a type check: a wrong type is the client's 400, never a crash further on."""
    value = camel_or_snake(d, camel, snake)
    return None if value is None else expect(value, kind, f"{at}.{camel}")


def _signature(part: dict, at: str) -> str | None:
    """The part's thoughtSignature; Google's "skip validation" placeholder means no signature
    (it is for Gemini alone and never travels to another dialect)."""
    signature = _opt(part, "thoughtSignature", "thought_signature", str, at)
    if signature is None or signature == SKIP_SIGNATURE:
        return None
    return upstream_signature(signature)


def _decode_media(data: dict, at: str, inline: bool) -> ImagePart | FilePart:
    mime = _opt(data, "mimeType", "mime_type", str, at)
    if inline:
        payload = _opt(data, "data", "data", str, at) or ""
        cls = ImagePart if (mime or "").startswith("image/") else FilePart
        return cls(media_type=mime or "application/octet-stream", data=payload)
    url = expect(camel_or_snake(data, "fileUri", "file_uri"), str, f"{at}.fileUri")
    return (
        ImagePart(mime, url=url) if (mime or "").startswith("image/") else FilePart(mime, url=url)
    )


def decode_part(part: Any, at: str, calls: PendingCalls) -> Any:
    expect(part, dict, at)
    signature = _signature(part, at)
    text = opt(part, "text", str, f"{at}.text")
    if part.get("thought") is True and text is not None:
        return ReasoningPart(text, signature)
    if text is not None:
        return TextPart(text)
    inline = _opt(part, "inlineData", "inline_data", dict, at)
    if inline is not None:
        return _decode_media(inline, f"{at}.inlineData", True)
    file = _opt(part, "fileData", "file_data", dict, at)
    if file is not None:
        return _decode_media(file, f"{at}.fileData", False)
    call = _opt(part, "functionCall", "function_call", dict, at)
    if call is not None:
        where = f"{at}.functionCall"
        name = expect(call.get("name"), str, f"{where}.name")
        args = opt(call, "args", dict, f"{where}.args") or {}
        call_id = opt(call, "id", str, f"{where}.id") or new_id("call_")
        tool_call = ToolCallPart(call_id, name, json_text(args), signature)
        calls.add(tool_call)
        return tool_call
    response = _opt(part, "functionResponse", "function_response", dict, at)
    if response is not None:
        where = f"{at}.functionResponse"
        name = expect(response.get("name"), str, f"{where}.name")
        call_id = opt(response, "id", str, f"{where}.id")
        return _decode_function_response(response, name, calls.match(name, call_id))
    if signature is not None and part.get("thought") is True:
        return ReasoningPart("", signature)  # a bare signature part (Gemini 3 sends these)
    return None


def _decode_function_response(response: dict, name: str, call_id: str) -> ToolResultPart:
    payload = response.get("response")
    is_error = isinstance(payload, dict) and set(payload) == {"error"}
    if (
        isinstance(payload, dict)
        and len(payload) == 1
        and isinstance(next(iter(payload.values())), str)
        and (is_error or "result" in payload or "output" in payload or "content" in payload)
    ):
        text = next(iter(payload.values()))
    else:
        text = json_text(payload if payload is not None else {})
    return ToolResultPart(call_id, [TextPart(text)], is_error, name)


def decode_contents(req: NeutralRequest, contents: list) -> None:
    calls = PendingCalls()
    for i, content in enumerate(contents):
        at = f"contents[{i}]"
        expect(content, dict, at)
        role = opt(content, "role", str, f"{at}.role") or "user"
        raw_parts = opt(content, "parts", list, f"{at}.parts") or []
        if role == "model":
            calls.pending = []
        parts = [
            p
            for p in (decode_part(p, f"{at}.parts[{j}]", calls) for j, p in enumerate(raw_parts))
            if p is not None
        ]
        if role == "model":
            req.messages.append(Message("assistant", parts))
            continue
        if role not in ("user", "function", "tool"):
            raise BadRequest(f"'{at}.role' must be user or model", param=f"{at}.role")
        results = [p for p in parts if isinstance(p, ToolResultPart)]
        if results:
            req.messages.append(Message("tool", results))
        rest = [p for p in parts if not isinstance(p, ToolResultPart)]
        if rest or not results:
            req.messages.append(Message("user", rest))


def decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        expect(tool, dict, f"tools[{i}]")
        declarations = _opt(
            tool, "functionDeclarations", "function_declarations", list, f"tools[{i}]"
        )
        if declarations is None:
            # googleSearch, codeExecution, …: only a Gemini upstream knows them.
            req.tools.append(
                ToolSpec(str(next(iter(tool), "tool")), raw=tool, raw_dialect="gemini")
            )
            continue
        for j, decl in enumerate(declarations):
            at = f"tools[{i}].functionDeclarations[{j}]"
            expect(decl, dict, at)
            schema = opt(decl, "parameters", dict, f"{at}.parameters")
            if schema is None:  # the plain JSON Schema form (the Gemini CLI sends this one)
                schema = _opt(decl, "parametersJsonSchema", "parameters_json_schema", dict, at)
            req.tools.append(
                ToolSpec(
                    expect(decl.get("name"), str, f"{at}.name"),
                    opt(decl, "description", str, f"{at}.description"),
                    schema,
                )
            )


def decode_tool_config(req: NeutralRequest, config: Any) -> None:
    if config is None:
        return
    expect(config, dict, "toolConfig")
    at = "toolConfig.functionCallingConfig"
    calling = _opt(config, "functionCallingConfig", "function_calling_config", dict, "toolConfig")
    calling = calling or {}
    mode = (opt(calling, "mode", str, f"{at}.mode") or "AUTO").upper()
    names = _opt(calling, "allowedFunctionNames", "allowed_function_names", list, at) or []
    for k, name in enumerate(names):
        expect(name, str, f"{at}.allowedFunctionNames[{k}]")
    if mode in ("ANY", "VALIDATED") and len(names) == 1:
        req.tool_choice = ToolChoice("tool", names[0])
    elif mode == "ANY":
        req.tool_choice = ToolChoice("required")
    elif mode == "NONE":
        req.tool_choice = ToolChoice("none")
    else:
        req.tool_choice = ToolChoice("auto")


_NUMBERS = (
    ("temperature", "temperature", (int, float)),
    ("topP", "top_p", (int, float)),
    ("topK", "top_k", (int, float)),
    ("maxOutputTokens", "max_output_tokens", int),
    ("seed", "seed", int),
    ("presencePenalty", "presence_penalty", (int, float)),
    ("frequencyPenalty", "frequency_penalty", (int, float)),
    ("candidateCount", "candidate_count", int),
)


def decode_generation(req: NeutralRequest, config: Any) -> None:
    if config is None:
        return
    at = "generationConfig"
    expect(config, dict, at)
    values = [_opt(config, camel, snake, kind, at) for camel, snake, kind in _NUMBERS]
    (
        req.temperature,
        req.top_p,
        req.top_k,
        req.max_tokens,
        req.seed,
        req.presence_penalty,
        req.frequency_penalty,
        req.n,
    ) = values
    req.stop = stop_list(
        camel_or_snake(config, "stopSequences", "stop_sequences"), f"{at}.stopSequences"
    )
    mime = _opt(config, "responseMimeType", "response_mime_type", str, at)
    schema = _opt(config, "responseSchema", "response_schema", dict, at) or _opt(
        config, "responseJsonSchema", "response_json_schema", dict, at
    )
    if mime == "application/json":
        req.response_format = (
            ResponseFormat("json_schema", schema) if schema else ResponseFormat("json_object")
        )
    thinking = _opt(config, "thinkingConfig", "thinking_config", dict, at)
    if thinking is not None:
        _decode_thinking(req, thinking, f"{at}.thinkingConfig")


def _decode_thinking(req: NeutralRequest, thinking: dict, at: str) -> None:
    budget = _opt(thinking, "thinkingBudget", "thinking_budget", int, at)
    level = _opt(thinking, "thinkingLevel", "thinking_level", str, at)
    include = _opt(thinking, "includeThoughts", "include_thoughts", bool, at)
    if budget == 0:
        req.reasoning = Reasoning("disabled")
    elif (budget is None or budget < 0) and level is None:
        req.reasoning = Reasoning("adaptive", include_thoughts=include)
    else:
        effort = level.lower() if level else None
        positive = budget if budget is not None and budget > 0 else None
        req.reasoning = Reasoning("enabled", effort, positive, include)
