"""GeminiDialect: the Dialect interface over the request, response and stream modules."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import (
    Dialect,
    StreamDecoder,
    StreamEncoder,
    expect,
    new_id,
    opt,
)
from apex_ai_proxy.dialects.gemini.request_decode import (
    PendingCalls,
    camel_or_snake,
    decode_contents,
    decode_generation,
    decode_part,
    decode_tool_config,
    decode_tools,
)
from apex_ai_proxy.dialects.gemini.request_encode import (
    encode_contents,
    encode_generation,
    encode_tool_config,
    encode_tools,
)
from apex_ai_proxy.dialects.gemini.response import (
    NEUTRAL_TO_FINISH,
    decode_usage,
    encode_usage,
    response_parts,
    stop_reason_of,
)
from apex_ai_proxy.dialects.gemini.stream_decode import GeminiStreamDecoder
from apex_ai_proxy.dialects.gemini.stream_encode import GeminiStreamEncoder
from apex_ai_proxy.dialects.neutral import (
    NeutralRequest,
    NeutralResponse,
    StopReason,
    TextPart,
    ToolCallPart,
    Usage,
)
from apex_ai_proxy.errors import BadRequest

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


def _decode_system(system: Any) -> list[TextPart]:
    """systemInstruction: a Content (its text parts), or a bare string as the SDKs allow."""
    if system is None:
        return []
    if isinstance(system, str):
        return [TextPart(system)]
    expect(system, dict, "systemInstruction")
    parts = opt(system, "parts", list, "systemInstruction.parts") or []
    texts = []
    for i, part in enumerate(parts):
        expect(part, dict, f"systemInstruction.parts[{i}]")
        text = opt(part, "text", str, f"systemInstruction.parts[{i}].text")
        if text is not None:
            texts.append(TextPart(text))
    return texts


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
        req.system = _decode_system(camel_or_snake(body, "systemInstruction", "system_instruction"))
        decode_contents(req, contents)
        if body.get("tools") is not None:
            decode_tools(req, body["tools"])
        decode_tool_config(req, camel_or_snake(body, "toolConfig", "tool_config"))
        decode_generation(req, camel_or_snake(body, "generationConfig", "generation_config"))
        req.stream = bool(body.get("stream"))
        req.stream_include_usage = True
        req.extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS and k != "stream"}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        same = req.source_dialect == self.name
        body: dict[str, Any] = {"contents": encode_contents(req, same)}
        system = [{"text": p.text} for p in req.system if p.text]
        if system:
            body["systemInstruction"] = {"parts": system}
        tools = encode_tools(req) if req.tools else []
        if tools:
            body["tools"] = tools
            config = encode_tool_config(req)
            if config:
                body["toolConfig"] = config
        if req.parallel_tool_calls is False:
            req.drop("parallel_tool_calls")
        if req.user:
            req.drop("user")
        generation = encode_generation(req)
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
        calls = PendingCalls()
        raw = (candidate.get("content") or {}).get("parts") or []
        parts = [p for p in (decode_part(p, "parts", calls) for p in raw) if p is not None]
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        if not candidates and (body.get("promptFeedback") or {}).get("blockReason"):
            reason: StopReason = "content_filter"
        else:
            reason = stop_reason_of(candidate.get("finishReason"), has_calls)
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
                    "content": {"role": "model", "parts": response_parts(req, resp.parts)},
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
