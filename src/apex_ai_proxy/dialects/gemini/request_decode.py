"""Gemini generateContent request body (a client's) -> NeutralRequest."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import expect, json_text, new_id, stop_list
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


def decode_part(part: Any, at: str, calls: PendingCalls) -> Any:
    expect(part, dict, at)
    signature = camel_or_snake(part, "thoughtSignature", "thought_signature")
    if part.get("thought") and isinstance(part.get("text"), str):
        return ReasoningPart(part["text"], signature)
    if isinstance(part.get("text"), str):
        return TextPart(part["text"])
    inline = camel_or_snake(part, "inlineData", "inline_data")
    if isinstance(inline, dict):
        mime = camel_or_snake(inline, "mimeType", "mime_type") or "application/octet-stream"
        cls = ImagePart if mime.startswith("image/") else FilePart
        return cls(media_type=mime, data=inline.get("data"))
    file = camel_or_snake(part, "fileData", "file_data")
    if isinstance(file, dict):
        mime = camel_or_snake(file, "mimeType", "mime_type")
        url = camel_or_snake(file, "fileUri", "file_uri")
        return (
            ImagePart(mime, url=url)
            if (mime or "").startswith("image/")
            else FilePart(mime, url=url)
        )
    call = camel_or_snake(part, "functionCall", "function_call")
    if isinstance(call, dict):
        name = expect(call.get("name"), str, f"{at}.functionCall.name")
        tool_call = ToolCallPart(
            call.get("id") or new_id("call_"), name, json_text(call.get("args") or {}), signature
        )
        calls.add(tool_call)
        return tool_call
    response = camel_or_snake(part, "functionResponse", "function_response")
    if isinstance(response, dict):
        name = expect(response.get("name"), str, f"{at}.functionResponse.name")
        return _decode_function_response(response, name, calls.match(name, response.get("id")))
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
        role = content.get("role") or "user"
        raw_parts = expect(content.get("parts") or [], list, f"{at}.parts")
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
        declarations = camel_or_snake(tool, "functionDeclarations", "function_declarations")
        if declarations is None:
            req.tools.append(ToolSpec(next(iter(tool), "tool"), raw=tool, raw_dialect="gemini"))
            continue
        for j, decl in enumerate(expect(declarations, list, f"tools[{i}].functionDeclarations")):
            at = f"tools[{i}].functionDeclarations[{j}]"
            expect(decl, dict, at)
            schema = decl.get("parameters")
            if schema is None:
                schema = camel_or_snake(decl, "parametersJsonSchema", "parameters_json_schema")
            req.tools.append(
                ToolSpec(
                    expect(decl.get("name"), str, f"{at}.name"), decl.get("description"), schema
                )
            )


def decode_tool_config(req: NeutralRequest, config: Any) -> None:
    if not isinstance(config, dict):
        return
    calling = camel_or_snake(config, "functionCallingConfig", "function_calling_config") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    names = camel_or_snake(calling, "allowedFunctionNames", "allowed_function_names") or []
    if mode in ("ANY", "VALIDATED") and len(names) == 1:
        req.tool_choice = ToolChoice("tool", names[0])
    elif mode == "ANY":
        req.tool_choice = ToolChoice("required")
    elif mode == "NONE":
        req.tool_choice = ToolChoice("none")
    else:
        req.tool_choice = ToolChoice("auto")


def decode_generation(req: NeutralRequest, config: Any) -> None:
    if config is None:
        return
    expect(config, dict, "generationConfig")
    req.temperature = config.get("temperature")
    req.top_p = camel_or_snake(config, "topP", "top_p")
    req.top_k = camel_or_snake(config, "topK", "top_k")
    req.max_tokens = camel_or_snake(config, "maxOutputTokens", "max_output_tokens")
    req.stop = stop_list(
        camel_or_snake(config, "stopSequences", "stop_sequences"), "generationConfig.stopSequences"
    )
    req.seed = config.get("seed")
    req.presence_penalty = camel_or_snake(config, "presencePenalty", "presence_penalty")
    req.frequency_penalty = camel_or_snake(config, "frequencyPenalty", "frequency_penalty")
    req.n = camel_or_snake(config, "candidateCount", "candidate_count")
    mime = camel_or_snake(config, "responseMimeType", "response_mime_type")
    schema = camel_or_snake(config, "responseSchema", "response_schema") or camel_or_snake(
        config, "responseJsonSchema", "response_json_schema"
    )
    if mime == "application/json":
        req.response_format = (
            ResponseFormat("json_schema", schema) if schema else ResponseFormat("json_object")
        )
    thinking = camel_or_snake(config, "thinkingConfig", "thinking_config")
    if isinstance(thinking, dict):
        budget = camel_or_snake(thinking, "thinkingBudget", "thinking_budget")
        level = camel_or_snake(thinking, "thinkingLevel", "thinking_level")
        include = camel_or_snake(thinking, "includeThoughts", "include_thoughts")
        if budget == 0:
            req.reasoning = Reasoning("disabled")
        elif budget == -1 or (budget is None and level is None):
            req.reasoning = Reasoning("adaptive", include_thoughts=include)
        else:
            effort = str(level).lower() if level else None
            req.reasoning = Reasoning(
                "enabled", effort, budget if isinstance(budget, int) else None, include
            )
