"""Anthropic Messages <-> the neutral form.

Decisions:
- `max_tokens` is required upstream: when the client gave none, DEFAULT_MAX_TOKENS (8192) is
  sent, plus the thinking budget when thinking is on. A budget that does not fit below the
  client's max_tokens is lowered to max_tokens - 1; below Anthropic's minimum (1024) thinking
  is dropped (recorded in `dropped`).
- Reasoning effort -> `thinking: {type: enabled, budget_tokens}` with base.EFFORT_BUDGETS;
  "adaptive" -> `{type: adaptive}`; effort "none" -> no thinking. With thinking on, Anthropic
  refuses temperature/top_k changes and forced tool use: those are dropped (recorded) and a
  forced tool choice becomes auto.
- A `system` message in the middle of the conversation (neutral `system` message) goes into
  the user turn at that position as a text block `<system-reminder>\n…\n</system-reminder>`
  (the convention Claude Code itself uses). Incoming: Anthropic clients that put a `system`
  role into `messages` get it decoded as such (leading ones join the system prompt).
- Empty or whitespace-only text blocks are removed (Anthropic rejects them); a message left
  without content is removed and neighbours of the same role are merged.
- Tool results: a user turn starts with its `tool_result` blocks, then the other content;
  consecutive same-role messages are merged.
- JSON mode has no universal native form (structured outputs exist only on recent models):
  json_object / json_schema become an instruction appended to the system prompt. Incoming
  `output_config.format` is decoded as a json_schema response format.
- Temperature is clamped to Anthropic's [0, 1].
- Assistant reasoning without a signature (DeepSeek-style text) cannot be sent back: dropped.
"""

from __future__ import annotations

import base64
import binascii
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
    normalize_arguments,
    optional_int,
    optional_number,
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
from apex_ai_proxy.dialects.toolnames import ANTHROPIC_NAME
from apex_ai_proxy.errors import BadRequest, anthropic_error_type
from apex_ai_proxy.sse import SSEEvent, encode_event

DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024

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

STOP_TO_NEUTRAL: dict[str, StopReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "stop_sequence": "stop_sequence",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
NEUTRAL_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
    "error": "end_turn",
}
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


# --- requests: decode ------------------------------------------------------------------------


def _decode_source(block: dict, at: str) -> dict:
    return expect(block.get("source"), dict, f"{at}.source")


def _decode_block(req: NeutralRequest, block: Any, at: str) -> Any:
    if isinstance(block, str):
        return TextPart(block)
    expect(block, dict, at)
    kind = block.get("type")
    cache = block.get("cache_control")
    if kind == "text":
        return TextPart(expect(block.get("text"), str, f"{at}.text"), cache)
    if kind == "image":
        source = _decode_source(block, at)
        if source.get("type") == "url":
            return ImagePart(url=source.get("url"), cache_control=cache)
        if source.get("type") == "base64":
            return ImagePart(source.get("media_type"), source.get("data"), cache_control=cache)
        return FilePart(file_id=source.get("file_id"), cache_control=cache)
    if kind == "document":
        source = _decode_source(block, at)
        stype = source.get("type")
        if stype == "text":
            data = base64.b64encode(str(source.get("data") or "").encode()).decode()
            return FilePart("text/plain", data, filename=block.get("title"), cache_control=cache)
        if stype == "url":
            return FilePart(url=source.get("url"), filename=block.get("title"), cache_control=cache)
        if stype == "file":
            return FilePart(
                file_id=source.get("file_id"), filename=block.get("title"), cache_control=cache
            )
        return FilePart(
            source.get("media_type"),
            source.get("data"),
            filename=block.get("title"),
            cache_control=cache,
        )
    if kind == "tool_use":
        name = expect(block.get("name"), str, f"{at}.name")
        arguments = json_text(block.get("input") or {})
        return ToolCallPart(
            expect(block.get("id"), str, f"{at}.id"), name, normalize_arguments(arguments)
        )
    if kind == "tool_result":
        content = block.get("content")
        parts = (
            []
            if content is None
            else [
                _decode_block(req, b, f"{at}.content")
                for b in ([content] if isinstance(content, str) else content)
            ]
        )
        return ToolResultPart(
            expect(block.get("tool_use_id"), str, f"{at}.tool_use_id"),
            [p for p in parts if isinstance(p, TextPart | ImagePart | FilePart)],
            bool(block.get("is_error")),
        )
    if kind == "thinking":
        return ReasoningPart(str(block.get("thinking") or ""), block.get("signature"))
    if kind == "redacted_thinking":
        return ReasoningPart(redacted=block.get("data"))
    req.drop(f"messages[].content.{kind}")
    return None


def _decode_content(req: NeutralRequest, content: Any, at: str) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    expect(content, list, at)
    parts = (_decode_block(req, b, f"{at}[{i}]") for i, b in enumerate(content))
    return [p for p in parts if p is not None]


def _decode_messages(req: NeutralRequest, messages: list) -> None:
    names: dict[str, str] = {}
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        expect(message, dict, at)
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise BadRequest(f"'{at}.role' must be user or assistant", param=f"{at}.role")
        parts = _decode_content(req, message.get("content"), f"{at}.content")
        if role == "system":
            texts = [p for p in parts if isinstance(p, TextPart)]
            if req.messages:
                req.messages.append(Message("system", texts))
            else:
                req.system.extend(texts)
            continue
        if role == "assistant":
            names.update((p.id, p.name) for p in parts if isinstance(p, ToolCallPart))
            req.messages.append(Message("assistant", parts))
            continue
        results = [p for p in parts if isinstance(p, ToolResultPart)]
        for result in results:
            result.name = names.get(result.tool_call_id)
        if results:
            req.messages.append(Message("tool", results))
        rest = [p for p in parts if not isinstance(p, ToolResultPart)]
        if rest or not results:
            req.messages.append(Message("user", rest))


def _decode_system(req: NeutralRequest, system: Any) -> None:
    if system is None:
        return
    if isinstance(system, str):
        req.system.append(TextPart(system))
        return
    expect(system, list, "system")
    for i, block in enumerate(system):
        expect(block, dict, f"system[{i}]")
        req.system.append(
            TextPart(
                expect(block.get("text"), str, f"system[{i}].text"), block.get("cache_control")
            )
        )


def _decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        expect(tool, dict, f"tools[{i}]")
        name = expect(tool.get("name"), str, f"tools[{i}].name")
        if tool.get("type") not in (None, "custom"):
            req.tools.append(ToolSpec(name, raw=tool, raw_dialect="anthropic"))
            continue
        req.tools.append(
            ToolSpec(
                name,
                tool.get("description"),
                tool.get("input_schema"),
                tool.get("strict"),
                tool.get("cache_control"),
            )
        )


def _decode_tool_choice(req: NeutralRequest, value: Any) -> None:
    if value is None:
        return
    expect(value, dict, "tool_choice")
    kind = value.get("type")
    modes = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}
    if kind not in modes:
        raise BadRequest(
            "'tool_choice.type' must be auto, any, tool or none", param="tool_choice.type"
        )
    req.tool_choice = ToolChoice(modes[kind], value.get("name") if kind == "tool" else None)
    if value.get("disable_parallel_tool_use") is not None:
        req.parallel_tool_calls = not value["disable_parallel_tool_use"]


def _decode_thinking(req: NeutralRequest, body: dict) -> None:
    thinking = body.get("thinking")
    effort = (
        (body.get("output_config") or {}).get("effort")
        if isinstance(body.get("output_config"), dict)
        else None
    )
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            req.reasoning = Reasoning(
                "enabled", effort, budget if isinstance(budget, int) else None, True
            )
        elif kind == "adaptive":
            req.reasoning = Reasoning("adaptive", effort, include_thoughts=True)
        elif kind == "disabled":
            req.reasoning = Reasoning("disabled")
    elif effort:
        req.reasoning = Reasoning("adaptive", effort)


# --- requests: encode ------------------------------------------------------------------------


def _nonblank(text: str) -> bool:
    return bool(text and text.strip())


def _text_block(part: TextPart) -> dict:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _media_block(req: NeutralRequest, part: ImagePart | FilePart) -> dict | None:
    if isinstance(part, ImagePart):
        if part.data is not None:
            source = {
                "type": "base64",
                "media_type": part.media_type or "image/png",
                "data": part.data,
            }
        else:
            source = {"type": "url", "url": part.url}
        block: dict[str, Any] = {"type": "image", "source": source}
    else:
        if part.file_id:
            source = {"type": "file", "file_id": part.file_id}
        elif part.url:
            source = {"type": "url", "url": part.url}
        elif (part.media_type or "").startswith("text/"):
            try:
                text = base64.b64decode(part.data or "").decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                req.drop("messages[].content.file")
                return None
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            source = {
                "type": "base64",
                "media_type": part.media_type or "application/pdf",
                "data": part.data or "",
            }
        block = {"type": "document", "source": source}
        if part.filename:
            block["title"] = part.filename
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _content_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    blocks = []
    for part in parts:
        if isinstance(part, TextPart):
            if _nonblank(part.text):
                blocks.append(_text_block(part))
        elif isinstance(part, ImagePart | FilePart):
            block = _media_block(req, part)
            if block:
                blocks.append(block)
    return blocks


def _tool_result_block(req: NeutralRequest, result: ToolResultPart) -> dict:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_call_id}
    content = _content_blocks(req, result.content)
    if content:
        only_text = all(b["type"] == "text" and "cache_control" not in b for b in content)
        block["content"] = "".join(b["text"] for b in content) if only_text else content
    if result.is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    thinking, rest = [], []
    for part in parts:
        if isinstance(part, ReasoningPart):
            if part.redacted:
                thinking.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.signature:
                thinking.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature}
                )
            elif part.text:
                req.drop("messages[].reasoning")
        elif isinstance(part, ToolCallPart):
            name = req.tool_names.to_upstream(part.name, ANTHROPIC_NAME)
            rest.append(
                {
                    "type": "tool_use",
                    "id": part.id,
                    "name": name,
                    "input": parse_arguments(part.arguments),
                }
            )
        elif isinstance(part, TextPart) and _nonblank(part.text):
            rest.append(_text_block(part))
    return thinking + rest


def _push(turns: list[dict], role: str, blocks: list[dict]) -> None:
    """Append blocks, merging with the previous turn of the same role; tool results go first."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        merged = turns[-1]["content"] + blocks
        results = [b for b in merged if b["type"] == "tool_result"]
        turns[-1]["content"] = results + [b for b in merged if b["type"] != "tool_result"]
    else:
        turns.append({"role": role, "content": blocks})


def _encode_messages(req: NeutralRequest) -> list[dict]:
    turns: list[dict] = []
    for message in req.messages:
        if message.role == "assistant":
            _push(turns, "assistant", _assistant_blocks(req, message.parts))
        elif message.role == "tool":
            blocks = [
                _tool_result_block(req, p) for p in message.parts if isinstance(p, ToolResultPart)
            ]
            _push(turns, "user", blocks)
        elif message.role == "system":
            text = message.text()
            if _nonblank(text):
                _push(
                    turns,
                    "user",
                    [{"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"}],
                )
        else:
            _push(turns, "user", _content_blocks(req, message.parts))
    _strip_final_assistant(turns)
    return turns


def _strip_final_assistant(turns: list[dict]) -> None:
    """A final assistant turn (prefill) must not end with whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    last = turns[-1]["content"][-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()


def _encode_system(req: NeutralRequest, instruction: str | None) -> Any:
    blocks = [_text_block(p) for p in req.system if _nonblank(p.text)]
    if instruction:
        blocks.append({"type": "text", "text": instruction})
    if not blocks:
        return None
    if all("cache_control" not in b for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def _json_instruction(fmt: ResponseFormat | None) -> str | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema" and fmt.schema:
        return f"{JSON_INSTRUCTION} It must match this JSON schema: {json_text(fmt.schema)}"
    return JSON_INSTRUCTION


def _encode_tools(req: NeutralRequest) -> list[dict]:
    tools = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "anthropic":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        schema = dict(tool.parameters or {"type": "object", "properties": {}})
        schema.setdefault("type", "object")
        item: dict[str, Any] = {
            "name": req.tool_names.to_upstream(tool.name, ANTHROPIC_NAME),
            "input_schema": schema,
        }
        if tool.description:
            item["description"] = tool.description
        if tool.cache_control:
            item["cache_control"] = tool.cache_control
        tools.append(item)
    return tools


def _encode_tool_choice(req: NeutralRequest, thinking: bool) -> dict | None:
    choice = req.tool_choice
    out: dict[str, Any] | None = None
    if choice is not None:
        if thinking and choice.mode in ("required", "tool"):
            req.drop("tool_choice")
            out = {"type": "auto"}
        elif choice.mode == "tool" and choice.name:
            out = {"type": "tool", "name": req.tool_names.to_upstream(choice.name, ANTHROPIC_NAME)}
        else:
            out = {
                "type": {"auto": "auto", "required": "any", "none": "none"}.get(choice.mode, "auto")
            }
    if req.parallel_tool_calls is False and req.tools:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def _encode_thinking(req: NeutralRequest, body: dict, same: bool) -> bool:
    """Sets `thinking` and `max_tokens`; True when thinking is on."""
    reasoning = req.reasoning
    on = (
        reasoning is not None
        and reasoning.mode in ("enabled", "adaptive")
        and reasoning.effort != "none"
    )
    if not on:
        body["max_tokens"] = req.max_tokens or DEFAULT_MAX_TOKENS
        if same and reasoning is not None and reasoning.mode == "disabled":
            body["thinking"] = {"type": "disabled"}
        return False
    assert reasoning is not None
    if reasoning.mode == "adaptive" and same:
        body["thinking"] = {"type": "adaptive"}
        body["max_tokens"] = req.max_tokens or DEFAULT_MAX_TOKENS
        return True
    budget = budget_of(reasoning.effort, reasoning.budget_tokens)
    if req.max_tokens is None:
        body["max_tokens"] = budget + DEFAULT_MAX_TOKENS
    else:
        body["max_tokens"] = req.max_tokens
        budget = min(budget, req.max_tokens - 1)
        if budget < MIN_THINKING_BUDGET:
            req.drop("reasoning")
            return False
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def decode_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    cached = usage.get("cache_read_input_tokens") or 0
    created = usage.get("cache_creation_input_tokens") or 0
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens") or 0
    return Usage(
        (usage.get("input_tokens") or 0) + cached + created,
        usage.get("output_tokens") or 0,
        cached,
        created,
        thinking,
    )


def encode_usage(usage: Usage | None) -> dict:
    usage = usage or Usage()
    uncached = max(usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens, 0)
    return {
        "input_tokens": uncached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def _response_blocks(req: NeutralRequest, parts: list) -> list[dict]:
    blocks: list[dict] = []
    for part in parts:
        if isinstance(part, ReasoningPart):
            if part.redacted:
                blocks.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.text or part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
                )
        elif isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            name = req.tool_names.to_client(part.name)
            blocks.append(
                {
                    "type": "tool_use",
                    "id": part.id,
                    "name": name,
                    "input": parse_arguments(part.arguments),
                }
            )
    return blocks


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
        _decode_system(req, body.get("system"))
        _decode_messages(req, messages)
        if body.get("tools") is not None:
            _decode_tools(req, body["tools"])
        _decode_tool_choice(req, body.get("tool_choice"))
        _decode_thinking(req, body)
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
            req.response_format = ResponseFormat("json_schema", fmt.get("schema"))
        req.extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        same = req.source_dialect == self.name
        body: dict[str, Any] = {"model": upstream_model}
        thinking = _encode_thinking(req, body, same)
        native_format = same and ("output_config" in req.extra or "output_format" in req.extra)
        system = _encode_system(
            req, None if native_format else _json_instruction(req.response_format)
        )
        if system is not None:
            body["system"] = system
        body["messages"] = _encode_messages(req)
        tools = _encode_tools(req) if req.tools else []
        if tools:
            body["tools"] = tools
        choice = _encode_tool_choice(req, thinking) if tools else None
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
            for p in (_decode_block(req, b, "content") for b in body.get("content") or [])
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
            "content": _response_blocks(req, resp.parts),
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


# --- streams ---------------------------------------------------------------------------------


class AnthropicStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.blocks: dict[
            int, int | None
        ] = {}  # block index -> neutral tool index (None: not a tool)
        self.tools = 0
        self.usage: Usage | None = None
        self.stopped = False

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        try:
            data = orjson.loads(ev.data) if ev.data else None
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or ev.event
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler else []

    def _on_message_start(self, data: dict) -> list[NeutralEvent]:
        message = data.get("message") or {}
        out: list[NeutralEvent] = [
            Start(message.get("id") or new_id("msg_"), message.get("model") or "")
        ]
        self.usage = decode_usage(message.get("usage"))
        if self.usage is not None:
            out.append(UsageEvent(self.usage))
        return out

    def _on_content_block_start(self, data: dict) -> list[NeutralEvent]:
        block = data.get("content_block") or {}
        index = data.get("index", len(self.blocks))
        kind = block.get("type")
        self.blocks[index] = None
        if kind == "tool_use":
            self.blocks[index] = self.tools
            self.tools += 1
            return [
                ToolCallStart(
                    self.blocks[index], block.get("id") or new_id("toolu_"), block.get("name") or ""
                )
            ]
        if kind == "redacted_thinking":
            return [ReasoningDelta(redacted=block.get("data"))]
        if kind == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ReasoningDelta(block["thinking"])]
        return []

    def _on_content_block_delta(self, data: dict) -> list[NeutralEvent]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(delta.get("text") or "")]
        if kind == "thinking_delta":
            return [ReasoningDelta(delta.get("thinking") or "")]
        if kind == "signature_delta":
            return [ReasoningDelta(signature=delta.get("signature"))]
        if kind == "input_json_delta":
            tool = self.blocks.get(data.get("index", -1))
            if tool is not None and delta.get("partial_json"):
                return [ToolCallDelta(tool, delta["partial_json"])]
        return []

    def _on_content_block_stop(self, data: dict) -> list[NeutralEvent]:
        tool = self.blocks.get(data.get("index", -1))
        return [ToolCallEnd(tool)] if tool is not None else []

    def _on_message_delta(self, data: dict) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        usage = data.get("usage")
        if isinstance(usage, dict):
            merged = dict(usage)
            if self.usage is not None and merged.get("input_tokens") is None:
                previous = encode_usage(self.usage)
                for key in (
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                ):
                    merged.setdefault(key, previous[key])
            self.usage = decode_usage(merged)
            if self.usage is not None:
                out.append(UsageEvent(self.usage))
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self.stopped = True
            out.append(
                Stop(STOP_TO_NEUTRAL.get(delta["stop_reason"], "stop"), delta.get("stop_sequence"))
            )
        return out

    def _on_message_stop(self, data: dict) -> list[NeutralEvent]:
        if self.stopped:
            return []
        self.stopped = True
        return [Stop("stop")]

    def _on_error(self, data: dict) -> list[NeutralEvent]:
        error = data.get("error") or {}
        self.stopped = True
        return [
            ErrorEvent(
                ERROR_STATUS.get(error.get("type"), 500),
                str(error.get("message") or "upstream error"),
            )
        ]

    def finish(self) -> list[NeutralEvent]:
        return [] if self.stopped else [ErrorEvent(502, TRUNCATED)]


class AnthropicStreamEncoder(StreamEncoder):
    """Content blocks never overlap: a new kind of content closes the open block first.

    Argument fragments of parallel tool calls are expected one call after the other (as
    every OpenAI-compatible upstream sends them); a new call closes the previous one."""

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.id = ""
        self.model = req.model
        self.started = False
        self.done = False
        self.index = -1
        self.open: str | None = None  # "text" | "thinking" | "tool"
        self.open_tool: int | None = None
        self.signed = False
        self.usage: Usage | None = None
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None

    def _frame(self, event: str, data: dict) -> bytes:
        return encode_event(dumps(data), event)

    def _message_start(self) -> bytes:
        self.started = True
        usage = encode_usage(self.usage)
        message = {
            "id": self.id or new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": usage["output_tokens"] or 1},
        }
        return self._frame("message_start", {"type": "message_start", "message": message})

    def _open(self, kind: str, block: dict) -> bytes:
        out = self._close()
        self.index += 1
        self.open = kind
        self.signed = False
        return out + self._frame(
            "content_block_start",
            {"type": "content_block_start", "index": self.index, "content_block": block},
        )

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        self.open_tool = None
        return self._frame(
            "content_block_stop", {"type": "content_block_stop", "index": self.index}
        )

    def _delta(self, delta: dict) -> bytes:
        return self._frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        if isinstance(ev, Start):
            self.id = self.id or ev.id
            self.model = ev.model or self.model
            return b""
        if isinstance(ev, UsageEvent):
            self.usage = ev.usage
            return b""
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        head = b"" if self.started else self._message_start()
        return head + self._content(ev)

    def _content(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            out = b"" if self.open == "text" else self._open("text", {"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": ev.text})
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            block = {
                "type": "tool_use",
                "id": ev.id,
                "name": self.req.tool_names.to_client(ev.name),
                "input": {},
            }
            out = self._open("tool", block)
            self.open_tool = ev.index
            return out
        if isinstance(ev, ToolCallDelta):
            if self.open != "tool" or self.open_tool != ev.index or not ev.arguments:
                return b""
            return self._delta({"type": "input_json_delta", "partial_json": ev.arguments})
        if isinstance(ev, ToolCallEnd):
            return self._close() if self.open == "tool" and self.open_tool == ev.index else b""
        if isinstance(ev, Stop):
            self.stop_reason = NEUTRAL_TO_STOP.get(ev.reason, "end_turn")
            self.stop_sequence = ev.stop_sequence
            return self._close()
        return b""

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        out = b""
        if ev.redacted:
            out += (
                self._open("redacted", {"type": "redacted_thinking", "data": ev.redacted})
                + self._close()
            )
        if ev.text or ev.signature:
            if self.open != "thinking" or self.signed:
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            if ev.text:
                out += self._delta({"type": "thinking_delta", "thinking": ev.text})
            if ev.signature:
                out += self._delta({"type": "signature_delta", "signature": ev.signature})
                self.signed = True
        return out

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        self.done = True
        error = {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message},
        }
        return self._frame("error", error)

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = (b"" if self.started else self._message_start()) + self._close()
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        out += self._frame(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": encode_usage(self.usage)},
        )
        return out + self._frame("message_stop", {"type": "message_stop"})
