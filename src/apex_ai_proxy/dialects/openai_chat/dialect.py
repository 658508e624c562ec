"""OpenAIChatDialect: the Dialect interface over the request, response and stream modules."""

from __future__ import annotations

import time
from typing import Any

from apex_ai_proxy.dialects.base import (
    Dialect,
    StreamDecoder,
    StreamEncoder,
    expect,
    new_id,
    optional_int,
    optional_number,
    stop_list,
)
from apex_ai_proxy.dialects.neutral import (
    NeutralRequest,
    NeutralResponse,
    Reasoning,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from apex_ai_proxy.dialects.openai_chat.request_decode import (
    decode_messages,
    decode_parts,
    decode_reasoning,
    decode_response_format,
    decode_tool_calls,
    decode_tool_choice,
    decode_tools,
)
from apex_ai_proxy.dialects.openai_chat.request_encode import (
    effort_of,
    encode_messages,
    encode_reasoning_fields,
    encode_response_format,
    encode_tool_call,
    encode_tool_choice,
    encode_tools,
)
from apex_ai_proxy.dialects.openai_chat.response import (
    FINISH_TO_NEUTRAL,
    NEUTRAL_TO_FINISH,
    decode_usage,
    encode_usage,
)
from apex_ai_proxy.dialects.openai_chat.stream_decode import OpenAIChatStreamDecoder
from apex_ai_proxy.dialects.openai_chat.stream_encode import OpenAIChatStreamEncoder
from apex_ai_proxy.errors import BadRequest

KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "user",
        "response_format",
        "reasoning_effort",
    }
)


class OpenAIChatDialect(Dialect):
    name = "openai_chat"

    def decode_request(self, body: dict) -> NeutralRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest(
                "'messages' is required and must be a non-empty array", param="messages"
            )
        req = NeutralRequest(model=model, source_dialect=self.name)
        decode_messages(req, messages)
        if body.get("tools") is not None:
            decode_tools(req, body["tools"])
        req.tool_choice = decode_tool_choice(body.get("tool_choice"))
        if isinstance(body.get("parallel_tool_calls"), bool):
            req.parallel_tool_calls = body["parallel_tool_calls"]
        req.stream = bool(body.get("stream"))
        options = body.get("stream_options")
        req.stream_include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        req.max_tokens = optional_int(body, "max_completion_tokens") or optional_int(
            body, "max_tokens"
        )
        req.temperature = optional_number(body, "temperature")
        req.top_p = optional_number(body, "top_p")
        req.stop = stop_list(body.get("stop"), "stop")
        req.seed = optional_int(body, "seed")
        req.presence_penalty = optional_number(body, "presence_penalty")
        req.frequency_penalty = optional_number(body, "frequency_penalty")
        req.n = optional_int(body, "n")
        req.user = body.get("user") if isinstance(body.get("user"), str) else None
        req.response_format = decode_response_format(body.get("response_format"))
        effort = body.get("reasoning_effort")
        if effort is not None:
            expect(effort, str, "reasoning_effort")
            req.reasoning = Reasoning(
                mode="disabled" if effort == "none" else "enabled", effort=effort
            )
        req.extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        same = req.source_dialect == self.name
        body: dict[str, Any] = {"model": upstream_model, "messages": encode_messages(req, same)}
        if req.tools:
            tools = encode_tools(req, same)
            if tools:
                body["tools"] = tools
        if req.tool_choice and "tools" in body:  # OpenAI rejects tool_choice without tools
            body["tool_choice"] = encode_tool_choice(req, req.tool_choice)
        if req.parallel_tool_calls is not None and req.tools:
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.max_tokens is not None:
            reasoning = req.reasoning and req.reasoning.mode != "disabled"
            body["max_completion_tokens" if reasoning else "max_tokens"] = req.max_tokens
        for key in (
            "temperature",
            "top_p",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "n",
            "user",
        ):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        if req.stop:
            body["stop"] = req.stop
        if req.top_k is not None:
            req.drop("top_k")
        if req.response_format and req.response_format.type != "text":
            body["response_format"] = encode_response_format(req.response_format)
        if req.reasoning:
            effort = (
                "none" if req.reasoning.mode == "disabled" and same else effort_of(req.reasoning)
            )
            if effort:
                body["reasoning_effort"] = effort
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if same:
            for key, value in req.extra.items():
                body.setdefault(key, value)
        elif req.extra:
            for key in req.extra:
                req.drop(key)
        return body

    def decode_response(self, body: dict) -> NeutralResponse:
        choices = body.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        parts: list = list(decode_reasoning(message))
        if isinstance(message.get("content"), str) and message["content"]:
            parts.append(TextPart(message["content"]))
        elif isinstance(message.get("content"), list):
            parts += [
                p for p in decode_parts(message["content"], "content") if isinstance(p, TextPart)
            ]
        if message.get("refusal"):
            parts.append(TextPart(str(message["refusal"])))
        if message.get("tool_calls"):
            parts += decode_tool_calls(message["tool_calls"], "tool_calls")
        reason = FINISH_TO_NEUTRAL.get(choice.get("finish_reason") or "", "stop")
        if reason == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
            reason = "tool_calls"
        return NeutralResponse(
            id=body.get("id") or new_id("chatcmpl-"),
            model=body.get("model") or "",
            parts=parts,
            stop_reason=reason,
            usage=decode_usage(body.get("usage")),
            created=body.get("created"),
        )

    def encode_response(self, resp: NeutralResponse, req: NeutralRequest) -> dict:
        message: dict[str, Any] = {"role": "assistant"}
        texts = [p.text for p in resp.parts if isinstance(p, TextPart)]
        message["content"] = "".join(texts) if texts else None
        message["refusal"] = None
        reasoning = [p for p in resp.parts if isinstance(p, ReasoningPart)]
        if reasoning:
            encode_reasoning_fields(message, reasoning)
        calls = resp.tool_calls()
        if calls:
            message["tool_calls"] = [encode_tool_call(req, c, to_client=True) for c in calls]
        body: dict[str, Any] = {
            "id": resp.id,
            "object": "chat.completion",
            "created": resp.created or int(time.time()),
            "model": resp.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": NEUTRAL_TO_FINISH.get(resp.stop_reason or "stop", "stop"),
                    "logprobs": None,
                }
            ],
        }
        if resp.usage is not None:
            body["usage"] = encode_usage(resp.usage)
        return body

    def stream_decoder(self) -> StreamDecoder:
        return OpenAIChatStreamDecoder()

    def stream_encoder(self, req: NeutralRequest) -> StreamEncoder:
        return OpenAIChatStreamEncoder(req)

    def usage_of_response(self, body: dict) -> Usage | None:
        return decode_usage(body.get("usage"))
