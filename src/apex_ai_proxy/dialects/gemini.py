"""Gemini generateContent / streamGenerateContent (v1beta) <-> the neutral form.

Decisions:
- The model lives in the URL for Gemini: the encoder never puts it in the body, and a
  Gemini-dialect client body is expected to carry it as `model` (the pipeline copies it there
  from the path).
- Requests are read in camelCase or snake_case (`inlineData` / `inline_data`, …) and written in
  camelCase, which is what the API answers in.
- Tool calls have no ids on older models: ids are kept when present and synthesized otherwise;
  functionResponse parts are paired with calls by id, else by name in order. Ids are not
  sent upstream (functionResponse carries the function *name*).
- A tool result is sent as `{"result": text}` (`{"error": text}` when is_error), or as the
  object itself when the text is a JSON object. Images returned by a tool follow the
  functionResponse parts as inlineData parts of the same user turn.
- Thought signatures: a signature on a functionCall part travels as ToolCallPart.signature. A
  call without one (history produced by another model) gets Google's documented placeholder
  "skip_thought_signature_validator" on the first call of its turn (Gemini 3 rejects unsigned
  calls). Thought text is sent back only to the Gemini dialect's own clients' upstreams.
- Mid-conversation system messages become user text `<system-reminder>…</system-reminder>`.
- Schemas are cleaned with schema.gemini_schema; a tool without parameters has no
  `parameters` key (Gemini rejects an object schema with empty `properties`).
- Reasoning: enabled -> thinkingConfig {thinkingBudget (base.EFFORT_BUDGETS), includeThoughts},
  adaptive -> thinkingBudget -1, disabled -> thinkingBudget 0.
- JSON mode: responseMimeType application/json (+ responseSchema for json_schema).
"""

from __future__ import annotations

from typing import Any

import orjson

from apex_ai_proxy.dialects.base import (
    TRUNCATED,
    Dialect,
    StreamDecoder,
    StreamEncoder,
    budget_of,
    dumps,
    expect,
    json_text,
    new_id,
    parse_arguments,
    stop_list,
)
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    FilePart,
    ImagePart,
    Message,
    NeutralEvent,
    NeutralRequest,
    NeutralResponse,
    Reasoning,
    ReasoningDelta,
    ReasoningPart,
    ResponseFormat,
    Start,
    Stop,
    StopReason,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from apex_ai_proxy.dialects.schema import gemini_schema
from apex_ai_proxy.dialects.toolnames import GEMINI_NAME
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.sse import SSEEvent, encode_event

SKIP_SIGNATURE = "skip_thought_signature_validator"
KNOWN_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
        "toolConfig",
        "tool_config",
        "generationConfig",
        "generation_config",
    }
)
FILTERED = (
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
)
FINISH_TO_NEUTRAL: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "error",
    **{reason: "content_filter" for reason in FILTERED},
}
NEUTRAL_TO_FINISH = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _get(d: dict, camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


# --- requests: decode ------------------------------------------------------------------------


class _Calls:
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


def _decode_part(part: Any, at: str, calls: _Calls) -> Any:
    expect(part, dict, at)
    signature = _get(part, "thoughtSignature", "thought_signature")
    if part.get("thought") and isinstance(part.get("text"), str):
        return ReasoningPart(part["text"], signature)
    if isinstance(part.get("text"), str):
        return TextPart(part["text"])
    inline = _get(part, "inlineData", "inline_data")
    if isinstance(inline, dict):
        mime = _get(inline, "mimeType", "mime_type") or "application/octet-stream"
        cls = ImagePart if mime.startswith("image/") else FilePart
        return cls(media_type=mime, data=inline.get("data"))
    file = _get(part, "fileData", "file_data")
    if isinstance(file, dict):
        mime = _get(file, "mimeType", "mime_type")
        url = _get(file, "fileUri", "file_uri")
        return (
            ImagePart(mime, url=url)
            if (mime or "").startswith("image/")
            else FilePart(mime, url=url)
        )
    call = _get(part, "functionCall", "function_call")
    if isinstance(call, dict):
        name = expect(call.get("name"), str, f"{at}.functionCall.name")
        tool_call = ToolCallPart(
            call.get("id") or new_id("call_"), name, json_text(call.get("args") or {}), signature
        )
        calls.add(tool_call)
        return tool_call
    response = _get(part, "functionResponse", "function_response")
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


def _decode_contents(req: NeutralRequest, contents: list) -> None:
    calls = _Calls()
    for i, content in enumerate(contents):
        at = f"contents[{i}]"
        expect(content, dict, at)
        role = content.get("role") or "user"
        raw_parts = expect(content.get("parts") or [], list, f"{at}.parts")
        if role == "model":
            calls.pending = []
        parts = [
            p
            for p in (_decode_part(p, f"{at}.parts[{j}]", calls) for j, p in enumerate(raw_parts))
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


def _decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        expect(tool, dict, f"tools[{i}]")
        declarations = _get(tool, "functionDeclarations", "function_declarations")
        if declarations is None:
            req.tools.append(ToolSpec(next(iter(tool), "tool"), raw=tool, raw_dialect="gemini"))
            continue
        for j, decl in enumerate(expect(declarations, list, f"tools[{i}].functionDeclarations")):
            at = f"tools[{i}].functionDeclarations[{j}]"
            expect(decl, dict, at)
            schema = decl.get("parameters")
            if schema is None:
                schema = _get(decl, "parametersJsonSchema", "parameters_json_schema")
            req.tools.append(
                ToolSpec(
                    expect(decl.get("name"), str, f"{at}.name"), decl.get("description"), schema
                )
            )


def _decode_tool_config(req: NeutralRequest, config: Any) -> None:
    if not isinstance(config, dict):
        return
    calling = _get(config, "functionCallingConfig", "function_calling_config") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    names = _get(calling, "allowedFunctionNames", "allowed_function_names") or []
    if mode in ("ANY", "VALIDATED") and len(names) == 1:
        req.tool_choice = ToolChoice("tool", names[0])
    elif mode == "ANY":
        req.tool_choice = ToolChoice("required")
    elif mode == "NONE":
        req.tool_choice = ToolChoice("none")
    else:
        req.tool_choice = ToolChoice("auto")


def _decode_generation(req: NeutralRequest, config: Any) -> None:
    if config is None:
        return
    expect(config, dict, "generationConfig")
    req.temperature = config.get("temperature")
    req.top_p = _get(config, "topP", "top_p")
    req.top_k = _get(config, "topK", "top_k")
    req.max_tokens = _get(config, "maxOutputTokens", "max_output_tokens")
    req.stop = stop_list(
        _get(config, "stopSequences", "stop_sequences"), "generationConfig.stopSequences"
    )
    req.seed = config.get("seed")
    req.presence_penalty = _get(config, "presencePenalty", "presence_penalty")
    req.frequency_penalty = _get(config, "frequencyPenalty", "frequency_penalty")
    req.n = _get(config, "candidateCount", "candidate_count")
    mime = _get(config, "responseMimeType", "response_mime_type")
    schema = _get(config, "responseSchema", "response_schema") or _get(
        config, "responseJsonSchema", "response_json_schema"
    )
    if mime == "application/json":
        req.response_format = (
            ResponseFormat("json_schema", schema) if schema else ResponseFormat("json_object")
        )
    thinking = _get(config, "thinkingConfig", "thinking_config")
    if isinstance(thinking, dict):
        budget = _get(thinking, "thinkingBudget", "thinking_budget")
        level = _get(thinking, "thinkingLevel", "thinking_level")
        include = _get(thinking, "includeThoughts", "include_thoughts")
        if budget == 0:
            req.reasoning = Reasoning("disabled")
        elif budget == -1 or (budget is None and level is None):
            req.reasoning = Reasoning("adaptive", include_thoughts=include)
        else:
            effort = str(level).lower() if level else None
            req.reasoning = Reasoning(
                "enabled", effort, budget if isinstance(budget, int) else None, include
            )


# --- requests: encode ------------------------------------------------------------------------


def _media(part: ImagePart | FilePart) -> dict | None:
    if part.data is not None:
        return {
            "inlineData": {
                "mimeType": part.media_type or "application/octet-stream",
                "data": part.data,
            }
        }
    if part.url:
        mime = part.media_type or (
            "image/jpeg" if isinstance(part, ImagePart) else "application/pdf"
        )
        return {"fileData": {"mimeType": mime, "fileUri": part.url}}
    return None


def _user_parts(req: NeutralRequest, parts: list) -> list[dict]:
    out = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ImagePart | FilePart):
            media = _media(part)
            if media:
                out.append(media)
            else:
                req.drop("messages[].content.file_id")
    return out


def _model_parts(req: NeutralRequest, parts: list, same: bool) -> list[dict]:
    out: list[dict] = []
    signed = False
    for part in parts:
        if isinstance(part, ReasoningPart):
            if same and (part.text or part.signature):
                item: dict[str, Any] = {"text": part.text, "thought": True}
                if part.signature:
                    item["thoughtSignature"] = part.signature
                out.append(item)
            elif part.text or part.redacted:
                req.drop("messages[].reasoning")
        elif isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ToolCallPart):
            call = {
                "name": req.tool_names.to_upstream(part.name, GEMINI_NAME),
                "args": parse_arguments(part.arguments),
            }
            item = {"functionCall": call}
            signature = part.signature or (None if signed else SKIP_SIGNATURE)
            if signature:
                item["thoughtSignature"] = signature
            signed = True
            out.append(item)
    return out


def _function_response(req: NeutralRequest, result: ToolResultPart, names: dict[str, str]) -> dict:
    name = result.name or names.get(result.tool_call_id) or "tool"
    text = result.text()
    payload: Any = None
    if text.strip().startswith("{"):
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            payload = None
    if not isinstance(payload, dict):
        payload = {"error" if result.is_error else "result": text}
    return {
        "functionResponse": {
            "name": req.tool_names.to_upstream(name, GEMINI_NAME),
            "response": payload,
        }
    }


def _push(contents: list[dict], role: str, parts: list[dict]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        merged = contents[-1]["parts"] + parts
        responses = [p for p in merged if "functionResponse" in p]
        contents[-1]["parts"] = responses + [p for p in merged if "functionResponse" not in p]
    else:
        contents.append({"role": role, "parts": parts})


def _encode_contents(req: NeutralRequest, same: bool) -> list[dict]:
    names: dict[str, str] = {}
    contents: list[dict] = []
    for message in req.messages:
        if message.role == "assistant":
            names.update((p.id, p.name) for p in message.parts if isinstance(p, ToolCallPart))
            _push(contents, "model", _model_parts(req, message.parts, same))
        elif message.role == "tool":
            results = [p for p in message.parts if isinstance(p, ToolResultPart)]
            parts = [_function_response(req, r, names) for r in results]
            for result in results:
                parts += _user_parts(
                    req, [p for p in result.content if not isinstance(p, TextPart)]
                )
            _push(contents, "user", parts)
        elif message.role == "system":
            text = message.text()
            if text.strip():
                _push(
                    contents, "user", [{"text": f"<system-reminder>\n{text}\n</system-reminder>"}]
                )
        else:
            _push(contents, "user", _user_parts(req, message.parts))
    return contents


def _encode_tools(req: NeutralRequest) -> list[dict]:
    declarations, others = [], []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "gemini":
                others.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        decl: dict[str, Any] = {"name": req.tool_names.to_upstream(tool.name, GEMINI_NAME)}
        if tool.description:
            decl["description"] = tool.description
        schema = gemini_schema(tool.parameters) if tool.parameters else None
        if schema and (schema.get("properties") or schema.get("type") not in (None, "object")):
            decl["parameters"] = schema
        declarations.append(decl)
    return ([{"functionDeclarations": declarations}] if declarations else []) + others


def _encode_tool_config(req: NeutralRequest) -> dict | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.mode == "tool" and choice.name:
        name = req.tool_names.to_upstream(choice.name, GEMINI_NAME)
        calling: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [name]}
    else:
        calling = {
            "mode": {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice.mode, "AUTO")
        }
    return {"functionCallingConfig": calling}


def _encode_generation(req: NeutralRequest) -> dict:
    config: dict[str, Any] = {}
    pairs = (
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
        ("maxOutputTokens", req.max_tokens),
        ("seed", req.seed),
        ("presencePenalty", req.presence_penalty),
        ("frequencyPenalty", req.frequency_penalty),
        ("candidateCount", req.n),
    )
    config.update((key, value) for key, value in pairs if value is not None)
    if req.stop:
        config["stopSequences"] = req.stop[:5]
        if len(req.stop) > 5:
            req.drop("stop[5:]")
    fmt = req.response_format
    if fmt and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema:
            config["responseSchema"] = gemini_schema(fmt.schema)
    reasoning = req.reasoning
    if reasoning is not None:
        if reasoning.mode == "disabled" or reasoning.effort == "none":
            config["thinkingConfig"] = {"thinkingBudget": 0}
        elif reasoning.mode == "adaptive":
            config["thinkingConfig"] = {
                "thinkingBudget": -1,
                "includeThoughts": reasoning.include_thoughts is not False,
            }
        elif reasoning.mode == "enabled":
            budget = budget_of(reasoning.effort, reasoning.budget_tokens)
            config["thinkingConfig"] = {
                "thinkingBudget": budget,
                "includeThoughts": reasoning.include_thoughts is not False,
            }
    return config


# --- responses -------------------------------------------------------------------------------


def decode_usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = meta.get("thoughtsTokenCount") or 0
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    output = (meta.get("candidatesTokenCount") or 0) + thoughts
    return Usage(prompt, output, meta.get("cachedContentTokenCount") or 0, 0, thoughts)


def encode_usage(usage: Usage) -> dict:
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def _response_parts(req: NeutralRequest, parts: list) -> list[dict]:
    out: list[dict] = []
    for part in parts:
        if isinstance(part, ReasoningPart) and (part.text or part.signature):
            item: dict[str, Any] = {"text": part.text, "thought": True}
            if part.signature:
                item["thoughtSignature"] = part.signature
            out.append(item)
        elif isinstance(part, TextPart) and part.text:
            out.append({"text": part.text})
        elif isinstance(part, ToolCallPart):
            out.append(
                _call_part(req, part.id, part.name, parse_arguments(part.arguments), part.signature)
            )
    return out


def _call_part(
    req: NeutralRequest, call_id: str, name: str, args: dict, signature: str | None
) -> dict:
    item: dict[str, Any] = {
        "functionCall": {"id": call_id, "name": req.tool_names.to_client(name), "args": args}
    }
    if signature:
        item["thoughtSignature"] = signature
    return item


def _finish(reason: str | None, has_calls: bool) -> StopReason:
    neutral = FINISH_TO_NEUTRAL.get(reason or "STOP", "stop")
    return "tool_calls" if neutral == "stop" and has_calls else neutral


class GeminiDialect(Dialect):
    name = "gemini"

    def decode_request(self, body: dict) -> NeutralRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required (the model of the request path)", param="model")
        contents = body.get("contents")
        if not isinstance(contents, list):
            raise BadRequest("'contents' is required and must be an array", param="contents")
        req = NeutralRequest(model=model.removeprefix("models/"), source_dialect=self.name)
        system = _get(body, "systemInstruction", "system_instruction")
        if isinstance(system, dict):
            req.system = [
                TextPart(p["text"])
                for p in system.get("parts") or []
                if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
        elif isinstance(system, str):
            req.system = [TextPart(system)]
        _decode_contents(req, contents)
        if body.get("tools") is not None:
            _decode_tools(req, body["tools"])
        _decode_tool_config(req, _get(body, "toolConfig", "tool_config"))
        _decode_generation(req, _get(body, "generationConfig", "generation_config"))
        req.stream = bool(body.get("stream"))
        req.stream_include_usage = True
        req.extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS and k != "stream"}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        same = req.source_dialect == self.name
        body: dict[str, Any] = {"contents": _encode_contents(req, same)}
        system = [{"text": p.text} for p in req.system if p.text]
        if system:
            body["systemInstruction"] = {"parts": system}
        tools = _encode_tools(req) if req.tools else []
        if tools:
            body["tools"] = tools
            config = _encode_tool_config(req)
            if config:
                body["toolConfig"] = config
        if req.parallel_tool_calls is False:
            req.drop("parallel_tool_calls")
        if req.user:
            req.drop("user")
        generation = _encode_generation(req)
        if generation:
            body["generationConfig"] = generation
        if same:
            for key, value in req.extra.items():
                body.setdefault(key, value)
        else:
            for key in req.extra:
                req.drop(key)
        return body

    def decode_response(self, body: dict) -> NeutralResponse:
        candidates = body.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        calls = _Calls()
        raw = (candidate.get("content") or {}).get("parts") or []
        parts = [p for p in (_decode_part(p, "parts", calls) for p in raw) if p is not None]
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        if not candidates and (body.get("promptFeedback") or {}).get("blockReason"):
            reason: StopReason = "content_filter"
        else:
            reason = _finish(candidate.get("finishReason"), has_calls)
        return NeutralResponse(
            id=body.get("responseId") or new_id("gen-"),
            model=body.get("modelVersion") or "",
            parts=parts,
            stop_reason=reason,
            usage=decode_usage(body.get("usageMetadata")),
        )

    def encode_response(self, resp: NeutralResponse, req: NeutralRequest) -> dict:
        body: dict[str, Any] = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": _response_parts(req, resp.parts)},
                    "finishReason": NEUTRAL_TO_FINISH.get(resp.stop_reason or "stop", "STOP"),
                    "index": 0,
                }
            ],
            "modelVersion": resp.model,
            "responseId": resp.id,
        }
        if resp.usage is not None:
            body["usageMetadata"] = encode_usage(resp.usage)
        return body

    def stream_decoder(self) -> StreamDecoder:
        return GeminiStreamDecoder()

    def stream_encoder(self, req: NeutralRequest) -> StreamEncoder:
        return GeminiStreamEncoder(req)

    def usage_of_response(self, body: dict) -> Usage | None:
        return decode_usage(body.get("usageMetadata"))


# --- streams ---------------------------------------------------------------------------------


class GeminiStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls = 0

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        try:
            chunk = orjson.loads(ev.data) if ev.data else None
        except orjson.JSONDecodeError:
            return []
        if isinstance(chunk, list) and chunk:
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            self.stopped = True
            error = chunk["error"]
            code = error.get("code")
            return [
                ErrorEvent(
                    code if isinstance(code, int) else 500,
                    str(error.get("message") or "upstream error"),
                )
            ]
        out: list[NeutralEvent] = []
        if not self.started:
            self.started = True
            out.append(
                Start(chunk.get("responseId") or new_id("gen-"), chunk.get("modelVersion") or "")
            )
        candidates = chunk.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(part, dict):
                self._part(part, out)
        usage = decode_usage(chunk.get("usageMetadata"))
        if usage is not None:
            out.append(UsageEvent(usage))
        finish = candidate.get("finishReason")
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            finish = "SAFETY"
        if finish:
            self.stopped = True
            out.append(Stop(_finish(finish, self.calls > 0)))
        return out

    def _part(self, part: dict, out: list[NeutralEvent]) -> None:
        signature = part.get("thoughtSignature")
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = self.calls
            self.calls += 1
            out.append(
                ToolCallStart(
                    index, call.get("id") or new_id("call_"), call.get("name") or "", signature
                )
            )
            arguments = json_text(call.get("args") or {})
            if arguments != "{}":
                out.append(ToolCallDelta(index, arguments))
            out.append(ToolCallEnd(index))
        elif part.get("thought"):
            if part.get("text"):
                out.append(ReasoningDelta(part["text"]))
            if signature:
                out.append(ReasoningDelta(signature=signature))
        elif part.get("text"):
            out.append(TextDelta(part["text"]))

    def finish(self) -> list[NeutralEvent]:
        return [] if self.stopped else [ErrorEvent(502, TRUNCATED)]


class GeminiStreamEncoder(StreamEncoder):
    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.done = False
        self.usage: Usage | None = None
        self.reason: StopReason | None = None
        self.calls: dict[int, list] = {}  # index -> [id, name, signature, arguments]

    def _chunk(self, parts: list[dict], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": self.id,
        }
        if finish and self.usage is not None:
            body["usageMetadata"] = encode_usage(self.usage)
        return encode_event(dumps(body))

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            self.id = self.id or ev.id
            self.model = ev.model or self.model
            return b""
        if not self.id:
            self.id = new_id("gen-")
        if isinstance(ev, TextDelta):
            return self._chunk([{"text": ev.text}]) if ev.text else b""
        if isinstance(ev, ReasoningDelta):
            if not (ev.text or ev.signature):
                return b""
            part: dict[str, Any] = {"text": ev.text, "thought": True}
            if ev.signature:
                part["thoughtSignature"] = ev.signature
            return self._chunk([part])
        if isinstance(ev, ToolCallStart):
            self.calls[ev.index] = [ev.id, ev.name, ev.signature, ""]
        elif isinstance(ev, ToolCallDelta) and ev.index in self.calls:
            self.calls[ev.index][3] += ev.arguments
        elif isinstance(ev, ToolCallEnd) and ev.index in self.calls:
            call_id, name, signature, arguments = self.calls.pop(ev.index)
            return self._chunk(
                [_call_part(self.req, call_id, name, parse_arguments(arguments), signature)]
            )
        elif isinstance(ev, UsageEvent):
            self.usage = ev.usage
        elif isinstance(ev, Stop):
            self.reason = ev.reason
        elif isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        return b""

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "INTERNAL")}
        return encode_event(dumps({"error": error}))

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = b""
        for index in sorted(self.calls):
            out += self.encode(ToolCallEnd(index))
        self.done = True
        return out + self._chunk(
            [{"text": ""}], NEUTRAL_TO_FINISH.get(self.reason or "stop", "STOP")
        )
