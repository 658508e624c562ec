"""AnthropicDialect: the Dialect interface over the request, response and stream modules."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.anthropic.request_decode import (
    decode_block,
    decode_messages,
    decode_system,
    decode_thinking,
    decode_tool_choice,
    decode_tools,
)
from apex_ai_proxy.dialects.anthropic.request_encode import (
    encode_messages,
    encode_system,
    encode_thinking,
    encode_tool_choice,
    encode_tools,
    json_instruction,
)
from apex_ai_proxy.dialects.anthropic.response import (
    NEUTRAL_TO_STOP,
    STOP_TO_NEUTRAL,
    decode_usage,
    encode_usage,
    response_blocks,
)
from apex_ai_proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from apex_ai_proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from apex_ai_proxy.dialects.base import (
    Dialect,
    StreamDecoder,
    StreamEncoder,
    new_id,
    opt,
    optional_int,
    optional_number,
    stop_list,
)
from apex_ai_proxy.dialects.neutral import NeutralRequest, NeutralResponse, ResponseFormat, Usage
from apex_ai_proxy.errors import BadRequest

KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "tools",
        "tool_choice",
        "thinking",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
    }
)


class AnthropicDialect(Dialect):
    name = "anthropic"

    def decode_request(self, body: dict) -> NeutralRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("'messages' is required and must be an array", param="messages")
        req = NeutralRequest(model=model, source_dialect=self.name)
        decode_system(req, body.get("system"))
        decode_messages(req, messages)
        if body.get("tools") is not None:
            decode_tools(req, body["tools"])
        decode_tool_choice(req, body.get("tool_choice"))
        decode_thinking(req, body)
        req.stream = bool(body.get("stream"))
        req.stream_include_usage = True
        req.max_tokens = optional_int(body, "max_tokens")
        req.temperature = optional_number(body, "temperature")
        req.top_p = optional_number(body, "top_p")
        req.top_k = optional_int(body, "top_k")
        req.stop = stop_list(body.get("stop_sequences"), "stop_sequences")
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
            req.user = metadata["user_id"]
        output = body.get("output_config")
        fmt = output.get("format") if isinstance(output, dict) else body.get("output_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = opt(fmt, "schema", dict, "output_config.format.schema")
            req.response_format = ResponseFormat("json_schema", schema)
        req.extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        same = req.source_dialect == self.name
        body: dict[str, Any] = {"model": upstream_model}
        thinking = encode_thinking(req, body, same)
        native_format = same and ("output_config" in req.extra or "output_format" in req.extra)
        system = encode_system(
            req, None if native_format else json_instruction(req.response_format)
        )
        if system is not None:
            body["system"] = system
        body["messages"] = encode_messages(req)
        tools = encode_tools(req) if req.tools else []
        if tools:
            body["tools"] = tools
        choice = encode_tool_choice(req, thinking) if tools else None
        if choice:
            body["tool_choice"] = choice
        if req.temperature is not None:
            if thinking and req.temperature != 1:
                req.drop("temperature")
            else:
                body["temperature"] = min(max(req.temperature, 0.0), 1.0)
        if req.top_p is not None:
            if thinking and req.top_p < 0.95:
                req.drop("top_p")
            else:
                body["top_p"] = req.top_p
        if req.top_k is not None:
            if thinking:
                req.drop("top_k")
            else:
                body["top_k"] = req.top_k
        if req.stop:
            body["stop_sequences"] = req.stop
        if req.user:
            body["metadata"] = {"user_id": req.user}
        for key in ("seed", "presence_penalty", "frequency_penalty"):
            if getattr(req, key) is not None:
                req.drop(key)
        if req.n is not None and req.n > 1:
            req.drop("n")
        if stream:
            body["stream"] = True
        if same:
            for key, value in req.extra.items():
                body.setdefault(key, value)
        else:
            for key in req.extra:
                req.drop(key)
        return body

    def decode_response(self, body: dict) -> NeutralResponse:
        req = NeutralRequest(model="", source_dialect=self.name)
        parts = [
            p
            for p in (decode_block(req, b, "content") for b in body.get("content") or [])
            if p is not None
        ]
        return NeutralResponse(
            id=body.get("id") or new_id("msg_"),
            model=body.get("model") or "",
            parts=parts,
            stop_reason=STOP_TO_NEUTRAL.get(body.get("stop_reason") or "", "stop"),
            stop_sequence=body.get("stop_sequence"),
            usage=decode_usage(body.get("usage")),
        )

    def encode_response(self, resp: NeutralResponse, req: NeutralRequest) -> dict:
        return {
            "id": resp.id,
            "type": "message",
            "role": "assistant",
            "model": resp.model,
            "content": response_blocks(req, resp.parts),
            "stop_reason": NEUTRAL_TO_STOP.get(resp.stop_reason or "stop", "end_turn"),
            "stop_sequence": resp.stop_sequence,
            "usage": encode_usage(resp.usage),
        }

    def stream_decoder(self) -> StreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, req: NeutralRequest) -> StreamEncoder:
        return AnthropicStreamEncoder(req)

    def usage_of_response(self, body: dict) -> Usage | None:
        return decode_usage(body.get("usage"))
