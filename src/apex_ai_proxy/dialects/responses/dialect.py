"""ResponsesDialect: the Dialect interface over the request, response and stream modules."""

from __future__ import annotations

import time
from typing import Any

from apex_ai_proxy.dialects.base import (
    Dialect,
    StreamDecoder,
    StreamEncoder,
    expect,
    normalize_arguments,
    optional_int,
    optional_number,
)
from apex_ai_proxy.dialects.neutral import (
    Message,
    NeutralRequest,
    NeutralResponse,
    TextPart,
    ToolCallPart,
    Usage,
)
from apex_ai_proxy.dialects.responses.ids import gateway_id
from apex_ai_proxy.dialects.responses.request_decode import (
    InputDecoder,
    decode_reasoning,
    decode_reasoning_item,
    decode_text_format,
    decode_tool_choice,
    decode_tools,
)
from apex_ai_proxy.dialects.responses.request_encode import (
    encode_format,
    encode_input,
    encode_tool_choice,
    encode_tools,
)
from apex_ai_proxy.dialects.responses.response_object import (
    ECHO_FIELDS,
    ResponsesRequest,
    decode_usage,
    estimated_usage,
    finish_shell,
    output_items,
    response_shell,
    status_of,
    stop_reason_of,
)
from apex_ai_proxy.dialects.responses.stream_decode import ResponsesStreamDecoder
from apex_ai_proxy.dialects.responses.stream_encode import ResponsesStreamEncoder

# Top-level request fields the neutral form holds, or the gateway handles itself.
CONSUMED_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "user",
        "stream",
        "store",
        "include",
        "previous_response_id",
        "background",
        "stream_options",
    }
)


class ResponsesDialect(Dialect):
    name = "responses"

    def decode_request(self, body: dict) -> NeutralRequest:
        model = body.get("model")
        expect(model, str, "model")
        req = ResponsesRequest(model=model, source_dialect=self.name)
        req.echo = {key: body.get(key) for key in ECHO_FIELDS if body.get(key) is not None}
        instructions = body.get("instructions")
        if isinstance(instructions, str) and instructions:
            req.system.append(TextPart(instructions))
        elif isinstance(instructions, list):  # input items, as a stored prompt expands to
            decoder = InputDecoder(req)
            for i, item in enumerate(instructions):
                decoder.item(expect(item, dict, f"instructions[{i}]"), f"instructions[{i}]")
        items = body.get("input")
        if isinstance(items, str):
            req.messages.append(Message("user", [TextPart(items)]))
        elif items is not None:
            expect(items, list, "input")
            decoder = InputDecoder(req)
            for i, item in enumerate(items):
                expect(item, dict, f"input[{i}]")
                decoder.item(item, f"input[{i}]")
        if body.get("tools") is not None:
            decode_tools(req, body["tools"])
        req.tool_choice = decode_tool_choice(req, body.get("tool_choice"))
        if isinstance(body.get("parallel_tool_calls"), bool):
            req.parallel_tool_calls = body["parallel_tool_calls"]
        req.stream = body.get("stream") is True
        req.stream_include_usage = True
        req.max_tokens = optional_int(body, "max_output_tokens")
        req.temperature = optional_number(body, "temperature")
        req.top_p = optional_number(body, "top_p")
        req.user = body.get("user") if isinstance(body.get("user"), str) else None
        req.response_format = decode_text_format(body.get("text"))
        req.reasoning = decode_reasoning(body.get("reasoning"))
        req.extra = {k: v for k, v in body.items() if k not in CONSUMED_FIELDS}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        body: dict[str, Any] = {"model": upstream_model, "input": encode_input(req)}
        if req.system:
            body["instructions"] = req.system_text()
        if req.tools:
            tools = encode_tools(req)
            if tools:
                body["tools"] = tools
        if req.tool_choice and (req.tools or req.tool_choice.mode == "none"):
            body["tool_choice"] = encode_tool_choice(req, req.tool_choice)
        if req.parallel_tool_calls is not None and req.tools:
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.max_tokens is not None:
            body["max_output_tokens"] = req.max_tokens
        for key in ("temperature", "top_p", "user"):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        for key in ("stop", "seed", "presence_penalty", "frequency_penalty", "top_k"):
            if getattr(req, key):
                req.drop(key)
        if req.response_format and req.response_format.type != "text":
            body["text"] = {"format": encode_format(req.response_format)}
        if req.reasoning and req.reasoning.mode != "disabled":
            reasoning: dict[str, Any] = {"effort": req.reasoning.effort or "medium"}
            if req.reasoning.summary or req.reasoning.include_thoughts:
                reasoning["summary"] = req.reasoning.summary or "auto"
            body["reasoning"] = reasoning
        # The gateway keeps no upstream state for clients of other dialects: ask for the
        # reasoning to come back encrypted so the next turn can send it again.
        body["store"] = False
        body["include"] = ["reasoning.encrypted_content"]
        if stream:
            body["stream"] = True
        for key in req.extra:
            req.drop(key)
        return body

    def decode_response(self, body: dict) -> NeutralResponse:
        parts: list = []
        for item in body.get("output") or []:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "message":
                for content in item.get("content") or []:
                    if isinstance(content, dict) and content.get("type") == "output_text":
                        parts.append(TextPart(content.get("text") or ""))
                    elif isinstance(content, dict) and content.get("type") == "refusal":
                        parts.append(TextPart(content.get("refusal") or ""))
            elif kind == "function_call":
                parts.append(
                    ToolCallPart(
                        item.get("call_id") or gateway_id("call_"),
                        item.get("name") or "",
                        normalize_arguments(item.get("arguments")),
                    )
                )
            elif kind == "reasoning":
                parts.append(decode_reasoning_item(item))
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        return NeutralResponse(
            id=body.get("id") or gateway_id("resp_"),
            model=body.get("model") or "",
            parts=parts,
            stop_reason=stop_reason_of(body, has_calls),
            usage=decode_usage(body.get("usage")),
            created=int(body["created_at"]) if body.get("created_at") else None,
        )

    def encode_response(self, resp: NeutralResponse, req: NeutralRequest) -> dict:
        body = response_shell(
            req, gateway_id("resp_"), resp.created or int(time.time()), resp.model or req.model
        )
        body["output"] = output_items(resp, req)
        usage = resp.usage or estimated_usage(req, body["output"])
        finish_shell(body, status_of(resp.stop_reason), resp.stop_reason, usage)
        return body

    def stream_decoder(self) -> StreamDecoder:
        return ResponsesStreamDecoder()

    def stream_encoder(self, req: NeutralRequest) -> StreamEncoder:
        return ResponsesStreamEncoder(req)

    def usage_of_response(self, body: dict) -> Usage | None:
        return decode_usage(body.get("usage"))
