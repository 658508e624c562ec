"""OpenAI Chat Completions (and every OpenAI-compatible host) <-> the neutral form.

Decisions:
- Leading `system`/`developer` messages become the neutral system prompt; later ones stay in
  place as neutral `system` messages (OpenAI accepts them anywhere, so they come back in place).
- Reasoning (DeepSeek style): `reasoning_content` (also read: `reasoning`) in messages and
  stream deltas. Vendor data needed to send reasoning back to its upstream travels in two
  extension fields of the assistant message / delta:
  `reasoning_signature` (the signature of the last thinking block: Anthropic signature or Gemini
  thoughtSignature) and `reasoning_details` (OpenRouter's list, written only when some block has
  a signature or is redacted: `{"type": "reasoning.text", "text", "signature"}`,
  `{"type": "reasoning.encrypted", "data"}`), which keeps several blocks apart losslessly.
  Streams send each such block's entry, with an `index`, in the delta that closes it (the
  SDKs' delta accumulators merge indexed list entries).
  A Gemini thoughtSignature on a function call travels in
  `tool_calls[].extra_content.google.thought_signature` (Gemini's own OpenAI-compatible shape).
- Assistant reasoning is sent to an OpenAI-dialect upstream only when the client spoke this
  dialect too (OpenAI proper rejects unknown message fields); otherwise it is dropped.
- `max_tokens` is sent as `max_completion_tokens` when reasoning was asked for (OpenAI reasoning
  models reject `max_tokens`), else as `max_tokens` (what every compatible host understands).
- A tool result with `is_error` is sent as content prefixed "Error: " (the dialect has no flag).
  Images in tool results (not allowed in `tool` messages) follow in one user message after
  the tool messages of that turn.
- `top_k` is not an OpenAI parameter: it is dropped unless the client sent it in this dialect.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from apex_ai_proxy.dialects.base import (
    TRUNCATED,
    Dialect,
    StreamDecoder,
    StreamEncoder,
    data_url,
    dumps,
    expect,
    new_id,
    normalize_arguments,
    optional_int,
    optional_number,
    split_data_url,
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
from apex_ai_proxy.dialects.toolnames import OPENAI_NAME
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.sse import SSEEvent, encode_event

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

FINISH_TO_NEUTRAL: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
NEUTRAL_TO_FINISH = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}
# Anthropic-style thinking budgets mapped to an OpenAI effort (thresholds in tokens).
BUDGET_TO_EFFORT = ((4096, "low"), (16384, "medium"))


# --- requests --------------------------------------------------------------------------------


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


def _effort_of(reasoning: Reasoning) -> str | None:
    if reasoning.effort:
        return reasoning.effort
    if reasoning.budget_tokens:
        for limit, effort in BUDGET_TO_EFFORT:
            if reasoning.budget_tokens < limit:
                return effort
        return "high"
    return None


def _encode_parts(req: NeutralRequest, parts: list, allow_images: bool = True) -> str | list:
    if all(isinstance(p, TextPart) and not p.cache_control for p in parts):
        return "".join(p.text for p in parts)
    out: list[dict] = []
    for p in parts:
        if isinstance(p, TextPart):
            item: dict = {"type": "text", "text": p.text}
        elif isinstance(p, ImagePart) and allow_images:
            url = data_url(p.media_type, p.data) if p.data is not None else p.url
            item = {"type": "image_url", "image_url": {"url": url}}
            if p.detail:
                item["image_url"]["detail"] = p.detail
        elif isinstance(p, FilePart) and (p.data is not None or p.file_id):
            file: dict = (
                {"file_id": p.file_id}
                if p.file_id
                else {"file_data": data_url(p.media_type, p.data or "")}
            )
            if p.filename:
                file["filename"] = p.filename
            item = {"type": "file", "file": file}
        else:
            req.drop("messages[].content.file_url")
            continue
        if p.cache_control:
            item["cache_control"] = p.cache_control
        out.append(item)
    return out


def _encode_reasoning_fields(target: dict, parts: list[ReasoningPart]) -> None:
    text = "".join(p.text for p in parts)
    if text:
        target["reasoning_content"] = text
    signatures = [p.signature for p in parts if p.signature]
    if signatures:
        target["reasoning_signature"] = signatures[-1]
    if any(p.signature or p.redacted for p in parts):
        target["reasoning_details"] = [
            {"type": "reasoning.encrypted", "data": p.redacted}
            if p.redacted
            else {"type": "reasoning.text", "text": p.text, "signature": p.signature}
            for p in parts
        ]


def _encode_tool_call(req: NeutralRequest, call: ToolCallPart, to_client: bool) -> dict:
    name = (
        req.tool_names.to_client(call.name)
        if to_client
        else req.tool_names.to_upstream(call.name, OPENAI_NAME)
    )
    out = {
        "id": call.id,
        "type": "function",
        "function": {"name": name, "arguments": normalize_arguments(call.arguments)},
    }
    if call.signature:
        out["extra_content"] = {"google": {"thought_signature": call.signature}}
    return out


def _encode_messages(req: NeutralRequest, same_dialect: bool) -> list[dict]:
    out: list[dict] = []
    if req.system:
        out.append({"role": "system", "content": _encode_parts(req, list(req.system))})
    pending_images: list = []
    for message in req.messages:
        if message.role != "tool" and pending_images:
            out.append({"role": "user", "content": _encode_parts(req, pending_images)})
            pending_images = []
        if message.role == "system":
            out.append({"role": "system", "content": message.text()})
        elif message.role == "user":
            item = {"role": "user", "content": _encode_parts(req, message.parts)}
            if message.name:
                item["name"] = message.name
            out.append(item)
        elif message.role == "assistant":
            out.append(_encode_assistant(req, message, same_dialect))
        else:
            for result in message.parts:
                if not isinstance(result, ToolResultPart):
                    continue
                texts = [p for p in result.content if isinstance(p, TextPart)]
                images = [p for p in result.content if not isinstance(p, TextPart)]
                content = "".join(p.text for p in texts)
                if result.is_error and not content.lower().startswith("error"):
                    content = "Error: " + content
                out.append(
                    {"role": "tool", "tool_call_id": result.tool_call_id, "content": content}
                )
                if images:
                    pending_images += [
                        TextPart(f"Images returned by tool call {result.tool_call_id}:")
                    ] + images
    if pending_images:
        out.append({"role": "user", "content": _encode_parts(req, pending_images)})
    return out


def _encode_assistant(req: NeutralRequest, message: Message, same_dialect: bool) -> dict:
    item: dict[str, Any] = {"role": "assistant"}
    texts = [p for p in message.parts if isinstance(p, TextPart)]
    item["content"] = "".join(p.text for p in texts) if texts else None
    reasoning = [p for p in message.parts if isinstance(p, ReasoningPart)]
    if reasoning:
        if same_dialect:
            _encode_reasoning_fields(item, reasoning)
        else:
            req.drop("messages[].reasoning")
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    if calls:
        item["tool_calls"] = [_encode_tool_call(req, c, to_client=False) for c in calls]
    if message.name:
        item["name"] = message.name
    return item


def _encode_tools(req: NeutralRequest, same_dialect: bool) -> list[dict]:
    tools = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "openai_chat":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        function: dict[str, Any] = {"name": req.tool_names.to_upstream(tool.name, OPENAI_NAME)}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        if tool.strict is not None:
            function["strict"] = tool.strict
        item = {"type": "function", "function": function}
        if tool.cache_control and same_dialect:
            item["cache_control"] = tool.cache_control
        tools.append(item)
    return tools


def _encode_tool_choice(req: NeutralRequest, choice: ToolChoice) -> Any:
    if choice.mode == "tool" and choice.name:
        return {
            "type": "function",
            "function": {"name": req.tool_names.to_upstream(choice.name, OPENAI_NAME)},
        }
    return choice.mode if choice.mode != "tool" else "required"


# --- responses -------------------------------------------------------------------------------


def decode_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(prompt, completion, cached, details.get("cache_write_tokens") or 0, reasoning)


def encode_usage(usage: Usage) -> dict:
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if usage.cache_creation_tokens:
        out["prompt_tokens_details"]["cache_write_tokens"] = usage.cache_creation_tokens
    return out


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
        _decode_messages(req, messages)
        if body.get("tools") is not None:
            _decode_tools(req, body["tools"])
        req.tool_choice = _decode_tool_choice(body.get("tool_choice"))
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
        req.response_format = _decode_response_format(body.get("response_format"))
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
        body: dict[str, Any] = {"model": upstream_model, "messages": _encode_messages(req, same)}
        if req.tools:
            tools = _encode_tools(req, same)
            if tools:
                body["tools"] = tools
        if req.tool_choice and "tools" in body:  # OpenAI rejects tool_choice without tools
            body["tool_choice"] = _encode_tool_choice(req, req.tool_choice)
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
            body["response_format"] = _encode_response_format(req.response_format)
        if req.reasoning:
            effort = (
                "none" if req.reasoning.mode == "disabled" and same else _effort_of(req.reasoning)
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
        parts: list = list(_decode_reasoning(message))
        if isinstance(message.get("content"), str) and message["content"]:
            parts.append(TextPart(message["content"]))
        elif isinstance(message.get("content"), list):
            parts += [
                p for p in _decode_parts(message["content"], "content") if isinstance(p, TextPart)
            ]
        if message.get("refusal"):
            parts.append(TextPart(str(message["refusal"])))
        if message.get("tool_calls"):
            parts += _decode_tool_calls(message["tool_calls"], "tool_calls")
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
            _encode_reasoning_fields(message, reasoning)
        calls = resp.tool_calls()
        if calls:
            message["tool_calls"] = [_encode_tool_call(req, c, to_client=True) for c in calls]
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


def _encode_response_format(fmt: ResponseFormat) -> dict:
    if fmt.type == "json_schema":
        spec: dict[str, Any] = {
            "name": fmt.name or "response",
            "schema": fmt.schema or {"type": "object"},
        }
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    return {"type": fmt.type}


# --- streams ---------------------------------------------------------------------------------


_PLAIN_DELTA = frozenset({"role", "content"})


class OpenAIChatStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls: dict[int, tuple[int, str]] = {}  # upstream index -> (neutral index, id)
        self.open: list[int] = []
        self.count = 0

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data or ev.data.startswith("[DONE]"):
            return []
        try:
            chunk = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            return [_error_event(chunk["error"])]
        out: list[NeutralEvent] = []
        if not self.started:
            self.started = True
            out.append(
                Start(
                    chunk.get("id") or new_id("chatcmpl-"),
                    chunk.get("model") or "",
                    chunk.get("created"),
                )
            )
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        usage = decode_usage(chunk.get("usage"))
        if usage is not None:
            out.append(UsageEvent(usage))
        return out

    def _choice(self, choice: dict, out: list[NeutralEvent]) -> None:
        delta = choice.get("delta") or {}
        if delta.keys() <= _PLAIN_DELTA:  # most chunks: a piece of text and nothing else
            content = delta.get("content")
            if content and isinstance(content, str):
                out.append(TextDelta(content))
        else:
            self._rich_delta(delta, out)
        finish = choice.get("finish_reason")
        if finish:
            out += [ToolCallEnd(i) for i in self.open]
            self.open = []
            reason = FINISH_TO_NEUTRAL.get(finish, "stop")
            if reason == "stop" and self.count:
                reason = "tool_calls"
            self.stopped = True
            out.append(Stop(reason))

    def _rich_delta(self, delta: dict, out: list[NeutralEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning") if isinstance(delta.get("reasoning"), str) else None
        if reasoning:
            out.append(ReasoningDelta(reasoning))
        if isinstance(delta.get("reasoning_signature"), str):
            out.append(ReasoningDelta(signature=delta["reasoning_signature"]))
        for detail in delta.get("reasoning_details") or []:
            if isinstance(detail, dict) and detail.get("type") == "reasoning.encrypted":
                out.append(ReasoningDelta(redacted=detail.get("data")))
        if isinstance(delta.get("content"), str) and delta["content"]:
            out.append(TextDelta(delta["content"]))
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            out.append(TextDelta(delta["refusal"]))
        for position, call in enumerate(delta.get("tool_calls") or []):
            if isinstance(call, dict):
                self._tool_call(call, position, out)

    def _tool_call(self, call: dict, position: int, out: list[NeutralEvent]) -> None:
        upstream = call.get("index", position)
        function = call.get("function") or {}
        known = self.calls.get(upstream)
        # Some hosts repeat index 0 for parallel calls: a new id means a new call.
        if known is None or (call.get("id") and call["id"] != known[1]):
            index = self.count
            self.count += 1
            call_id = call.get("id") or new_id("call_")
            self.calls[upstream] = (index, call_id)
            self.open.append(index)
            google = (call.get("extra_content") or {}).get("google") or {}
            out.append(
                ToolCallStart(
                    index, call_id, function.get("name") or "", google.get("thought_signature")
                )
            )
        else:
            index = known[0]
        arguments = function.get("arguments")
        if arguments:
            out.append(
                ToolCallDelta(
                    index,
                    arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
                )
            )

    def finish(self) -> list[NeutralEvent]:
        if self.stopped:
            return []
        out: list[NeutralEvent] = [ToolCallEnd(i) for i in self.open]
        self.open = []
        return out + [ErrorEvent(502, TRUNCATED)]


def _error_event(error: Any) -> ErrorEvent:
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return ErrorEvent(status, str(error.get("message") or "upstream error"))
    return ErrorEvent(500, str(error))


class OpenAIChatStreamEncoder(StreamEncoder):
    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.created = 0
        self.started = False
        self.done = False
        self.usage: Usage | None = None
        self.arguments_sent: set[int] = set()
        self.reasoning_text = ""  # of the reasoning block still open, for its details entry
        self.reasoning_blocks = 0  # `index` of the next reasoning_details entry

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_event(dumps(self._envelope([choice])))

    def _envelope(self, choices: list) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def _start(self, ev: Start | None = None) -> bytes:
        self.started = True
        self.id = (ev.id if ev else None) or new_id("chatcmpl-")
        self.model = (ev.model if ev else None) or self.req.model
        self.created = (ev.created if ev else None) or int(time.time())
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            return b"" if self.started else self._start(ev)
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        if isinstance(ev, UsageEvent):
            self.usage = ev.usage
            return b""
        head = b"" if self.started else self._start()
        return head + self._body(ev)

    def _body(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            return self._chunk({"content": ev.text}) if ev.text else b""
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        self.reasoning_text = ""
        if isinstance(ev, ToolCallStart):
            call: dict[str, Any] = {
                "index": ev.index,
                "id": ev.id,
                "type": "function",
                "function": {"name": self.req.tool_names.to_client(ev.name), "arguments": ""},
            }
            if ev.signature:
                call["extra_content"] = {"google": {"thought_signature": ev.signature}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(ev, ToolCallDelta):
            if not ev.arguments:
                return b""
            self.arguments_sent.add(ev.index)
            return self._chunk(
                {"tool_calls": [{"index": ev.index, "function": {"arguments": ev.arguments}}]}
            )
        if isinstance(ev, ToolCallEnd):
            if ev.index in self.arguments_sent:
                return b""
            # A call without arguments still carries "{}" so clients parse valid JSON.
            self.arguments_sent.add(ev.index)
            return self._chunk(
                {"tool_calls": [{"index": ev.index, "function": {"arguments": "{}"}}]}
            )
        if isinstance(ev, Stop):
            return self._chunk({}, NEUTRAL_TO_FINISH.get(ev.reason, "stop"))
        return b""

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        """Text as `reasoning_content`; a block closed by a signature, or a redacted block, also
        as one indexed `reasoning_details` entry, so clients merging deltas keep blocks apart."""
        delta: dict[str, Any] = {}
        details: list[dict] = []
        if ev.text:
            delta["reasoning_content"] = ev.text
            self.reasoning_text += ev.text
        if ev.signature:
            delta["reasoning_signature"] = ev.signature
            text, self.reasoning_text = self.reasoning_text, ""
            details.append({"type": "reasoning.text", "text": text, "signature": ev.signature})
        if ev.redacted:
            details.append({"type": "reasoning.encrypted", "data": ev.redacted})
        for detail in details:
            detail["index"] = self.reasoning_blocks
            self.reasoning_blocks += 1
        if details:
            delta["reasoning_details"] = details
        return self._chunk(delta) if delta else b""

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        return encode_event(
            dumps(
                {"error": {"message": message, "type": error_type, "param": None, "code": status}}
            )
        )

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = b""
        if self.req.stream_include_usage and self.usage is not None:
            usage_chunk = self._envelope([])
            usage_chunk["usage"] = encode_usage(self.usage)
            out += encode_event(dumps(usage_chunk))
        return out + b"data: [DONE]\n\n"
