"""NeutralRequest -> Gemini generateContent request body (for an upstream)."""

from __future__ import annotations

from typing import Any

import orjson

from apex_ai_proxy.dialects.base import budget_of, parse_arguments
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    NeutralRequest,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from apex_ai_proxy.dialects.schema import gemini_schema
from apex_ai_proxy.dialects.toolnames import GEMINI_NAME

SKIP_SIGNATURE = "skip_thought_signature_validator"


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


def encode_contents(req: NeutralRequest, same: bool) -> list[dict]:
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


def encode_tools(req: NeutralRequest) -> list[dict]:
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


def encode_tool_config(req: NeutralRequest) -> dict | None:
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


def encode_generation(req: NeutralRequest) -> dict:
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
