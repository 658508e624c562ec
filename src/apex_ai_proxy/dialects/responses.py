"""OpenAI Responses API (`POST /v1/responses`) <-> the neutral form.

Decisions:
- `instructions` and the developer/system messages that open `input` become the neutral system
  prompt; later ones stay in place as neutral `system` messages.
- Consecutive assistant-side items (reasoning, assistant message, function_call) form one neutral
  assistant message, and consecutive `function_call_output` items one `tool` message, so targets
  that need a tool call and its thinking in one turn (Anthropic, Gemini) get them together.
- Reasoning that another vendor needs back verbatim (Anthropic signature or redacted thinking,
  Gemini thoughtSignature) travels to the client in the reasoning item's `encrypted_content` as a
  gateway token, `apx1:` + base64url(JSON); a real OpenAI `encrypted_content` is kept as is.
  Reasoning text from other vendors is shown as the item's summary, one summary part per block.
- Ids the gateway makes contain `_apx` (`resp_apx…`, `msg_apx…`, `rs_apx…`, `fc_apx…`), so a
  native Responses upstream can be spared items it never produced (see providers/responses.py).
- Tool definitions of types other than `function` (hosted web search, file search, MCP, custom,
  types newer than this code) are kept raw for a Responses upstream and dropped (and recorded)
  by every other target. Input items of unknown types are dropped and recorded.
- Fields the gateway itself handles (`store`, `include`, `previous_response_id`, `background`)
  are not forwarded by translation; other unknown fields go to `extra` (same dialect only).
- The final response always carries `usage`; when the upstream reported none it is estimated.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
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
    json_text,
    merge_usage,
    normalize_arguments,
    optional_int,
    optional_number,
    split_data_url,
)
from apex_ai_proxy.dialects.estimate import estimate_tokens
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

GATEWAY_ID_MARK = "_apx"
TOKEN_PREFIX = "apx1:"

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
# Request fields a Response object repeats back to the client.
ECHO_FIELDS = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)
ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def gateway_id(prefix: str) -> str:
    """An item or response id made by the gateway: `msg_apx…`, recognisable later."""
    return f"{prefix}{GATEWAY_ID_MARK}{secrets.token_hex(16)}"


def is_gateway_id(value: Any) -> bool:
    return isinstance(value, str) and GATEWAY_ID_MARK in value[:8]


@dataclass(slots=True)
class ResponsesRequest(NeutralRequest):
    """The neutral request plus what a Response object must repeat back to the client."""

    echo: dict[str, Any] = field(default_factory=dict)


# --- reasoning tokens ------------------------------------------------------------------------


def reasoning_token(part: ReasoningPart) -> str | None:
    """`encrypted_content` for a reasoning part: OpenAI's own, or a gateway token, or None."""
    if part.encrypted_content:
        return part.encrypted_content
    data = {}
    if part.signature:
        data["s"] = part.signature
    if part.redacted:
        data["r"] = part.redacted
    if not data:
        return None
    return TOKEN_PREFIX + base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def call_signature_item(signature: str) -> dict:
    """A reasoning item carrying the signature of the function call that follows it (Gemini
    thoughtSignature): clients keep reasoning items with their encrypted_content, not extras."""
    token = base64.urlsafe_b64encode(orjson.dumps({"c": signature})).decode().rstrip("=")
    return {
        "id": gateway_id("rs_"),
        "type": "reasoning",
        "summary": [],
        "encrypted_content": TOKEN_PREFIX + token,
        "status": "completed",
    }


def _token_data(value: str) -> dict:
    raw = value[len(TOKEN_PREFIX) :]
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}  # a damaged token: the reasoning is sent without its signature
    return data if isinstance(data, dict) else {}


def _read_token(part: ReasoningPart, value: str) -> None:
    if not value.startswith(TOKEN_PREFIX):
        part.encrypted_content = value
        return
    data = _token_data(value)
    part.signature = data.get("s") if isinstance(data.get("s"), str) else None
    part.redacted = data.get("r") if isinstance(data.get("r"), str) else None


def _call_signature(item: dict) -> str | None:
    value = item.get("encrypted_content")
    if not isinstance(value, str) or not value.startswith(TOKEN_PREFIX):
        return None
    signature = _token_data(value).get("c")
    return signature if isinstance(signature, str) else None


# --- requests: decode ------------------------------------------------------------------------


def _decode_content(content: Any, where: str, req: NeutralRequest) -> list:
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
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(TextPart(expect(item.get("text"), str, f"{at}.text")))
        elif kind == "refusal":
            parts.append(TextPart(str(item.get("refusal") or "")))
        elif kind == "input_image":
            url = item.get("image_url")
            inline = split_data_url(url) if isinstance(url, str) else None
            if inline:
                parts.append(ImagePart(inline[0], inline[1], detail=item.get("detail")))
            elif isinstance(url, str):
                parts.append(ImagePart(url=url, detail=item.get("detail")))
            elif isinstance(item.get("file_id"), str):
                parts.append(FilePart(file_id=item["file_id"], media_type="image/*"))
            else:
                raise BadRequest(f"'{at}' needs image_url or file_id", param=at)
        elif kind == "input_file":
            parts.append(_decode_file(item))
        else:
            req.drop(f"{where}[].{kind}")
    return parts


def _decode_file(item: dict) -> FilePart:
    file_data = item.get("file_data")
    inline = split_data_url(file_data) if isinstance(file_data, str) else None
    return FilePart(
        media_type=inline[0] if inline else None,
        data=inline[1] if inline else file_data,
        url=item.get("file_url"),
        file_id=item.get("file_id"),
        filename=item.get("filename"),
    )


def _decode_reasoning_item(item: dict) -> ReasoningPart:
    summary = [
        s.get("text") or ""
        for s in item.get("summary") or []
        if isinstance(s, dict) and isinstance(s.get("text"), str)
    ]
    content = [
        c.get("text") or ""
        for c in item.get("content") or []
        if isinstance(c, dict) and isinstance(c.get("text"), str)
    ]
    part = ReasoningPart(
        text="".join(content) if content else "".join(summary),
        summary=summary,
        id=item.get("id") if isinstance(item.get("id"), str) else None,
    )
    if isinstance(item.get("encrypted_content"), str):
        _read_token(part, item["encrypted_content"])
    return part


def _decode_output(value: Any, where: str, req: NeutralRequest) -> list:
    if isinstance(value, str):
        return [TextPart(value)]
    if isinstance(value, list):
        return _decode_content(value, where, req)
    if value is None:
        return []
    return [TextPart(json_text(value))]


class _InputDecoder:
    """Turns the `input` items into neutral messages, grouping assistant and tool turns."""

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.leading = True
        self.call_names: dict[str, str] = {}
        self.call_signature: str | None = None  # for the next function_call

    def _append(self, role: str, part: Any) -> None:
        messages = self.req.messages
        if messages and messages[-1].role == role and role in ("assistant", "tool"):
            messages[-1].parts.append(part)
        else:
            messages.append(Message(role, [part]))  # type: ignore[arg-type]

    def item(self, item: dict, at: str) -> None:
        kind = item.get("type")
        if kind is None or kind == "message":
            self._message(item, at)
            return
        self.leading = False
        if kind == "function_call":
            call_id = expect(item.get("call_id"), str, f"{at}.call_id")
            name = expect(item.get("name"), str, f"{at}.name")
            self.call_names[call_id] = name
            arguments = item.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = json_text(arguments)
            call = ToolCallPart(call_id, name, normalize_arguments(arguments), self.call_signature)
            self.call_signature = None
            self._append("assistant", call)
        elif kind == "function_call_output":
            call_id = expect(item.get("call_id"), str, f"{at}.call_id")
            content = _decode_output(item.get("output"), f"{at}.output", self.req)
            result = ToolResultPart(call_id, content, name=self.call_names.get(call_id))
            self._append("tool", result)
        elif kind == "reasoning":
            self.call_signature = _call_signature(item)
            if self.call_signature is None:
                self._append("assistant", _decode_reasoning_item(item))
        else:
            self.req.drop(f"input[].{kind}")

    def _message(self, item: dict, at: str) -> None:
        role = item.get("role")
        parts = _decode_content(item.get("content"), f"{at}.content", self.req)
        if role in ("system", "developer"):
            texts = [p for p in parts if isinstance(p, TextPart)]
            if self.leading:
                self.req.system.extend(texts)
            else:
                self.req.messages.append(Message("system", texts))
            return
        self.leading = False
        if role == "user":
            self.req.messages.append(Message("user", parts))
        elif role == "assistant":
            for part in parts:
                self._append("assistant", part)
        else:
            raise BadRequest(
                f"'{at}.role' must be user, assistant, system or developer", param=f"{at}.role"
            )


def _decode_tools(req: NeutralRequest, tools: Any) -> None:
    expect(tools, list, "tools")
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        expect(tool, dict, at)
        if tool.get("type") != "function":
            req.tools.append(ToolSpec(str(tool.get("type")), raw=tool, raw_dialect="responses"))
            continue
        req.tools.append(
            ToolSpec(
                expect(tool.get("name"), str, f"{at}.name"),
                tool.get("description"),
                tool.get("parameters"),
                tool.get("strict"),
            )
        )


def _decode_tool_choice(req: NeutralRequest, value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "function" and isinstance(value.get("name"), str):
            return ToolChoice("tool", value["name"])
        if kind == "allowed_tools":
            mode = value.get("mode")
            return ToolChoice(mode if mode in ("auto", "required") else "auto")
        req.drop(f"tool_choice.{kind}")
        return ToolChoice("auto")
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a tool object", param="tool_choice"
    )


def _decode_text_format(value: Any) -> ResponseFormat | None:
    if not isinstance(value, dict):
        return None
    fmt = value.get("format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        return ResponseFormat("json_schema", fmt.get("schema"), fmt.get("name"), fmt.get("strict"))
    if kind == "json_object":
        return ResponseFormat("json_object")
    return None


def _decode_reasoning(value: Any) -> Reasoning | None:
    if not isinstance(value, dict):
        return None
    effort = value.get("effort")
    summary = value.get("summary") or value.get("generate_summary")
    if effort is None and summary is None:
        return None
    mode = "disabled" if effort == "none" else "enabled"
    return Reasoning(
        mode=mode,
        effort=effort if isinstance(effort, str) else None,
        summary=summary if isinstance(summary, str) else None,
        include_thoughts=summary is not None and summary != "none",
    )


# --- requests: encode (a client of another dialect, a Responses upstream) -------------------


def _encode_content(parts: list, role: str) -> list[dict]:
    text_type = "output_text" if role == "assistant" else "input_text"
    out: list[dict] = []
    for p in parts:
        if isinstance(p, TextPart):
            item: dict[str, Any] = {"type": text_type, "text": p.text}
            if role == "assistant":
                item["annotations"] = []
            out.append(item)
        elif isinstance(p, ImagePart):
            url = data_url(p.media_type, p.data) if p.data is not None else p.url
            out.append({"type": "input_image", "image_url": url, "detail": p.detail or "auto"})
        elif isinstance(p, FilePart):
            file: dict[str, Any] = {"type": "input_file"}
            if p.file_id:
                file["file_id"] = p.file_id
            elif p.data is not None:
                file["file_data"] = data_url(p.media_type, p.data)
            elif p.url:
                file["file_url"] = p.url
            if p.filename:
                file["filename"] = p.filename
            out.append(file)
    return out


def _encode_reasoning_item(part: ReasoningPart, with_id: bool) -> dict:
    summary = part.summary or ([part.text] if part.text else [])
    item: dict[str, Any] = {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": s} for s in summary],
    }
    if with_id:
        item["id"] = part.id or gateway_id("rs_")
    token = reasoning_token(part)
    if token is not None:
        item["encrypted_content"] = token
    return item


def _encode_tool_output(result: ToolResultPart) -> str | list[dict]:
    if all(isinstance(p, TextPart) for p in result.content):
        text = result.text()
        if result.is_error and not text.lower().startswith("error"):
            text = "Error: " + text
        return text
    return _encode_content(result.content, "user")


def encode_input(req: NeutralRequest) -> list[dict]:
    """Neutral messages as Responses input items (for a Responses upstream)."""
    items: list[dict] = []
    for message in req.messages:
        if message.role in ("user", "system"):
            role = "developer" if message.role == "system" else "user"
            items.append({"role": role, "content": _encode_content(message.parts, message.role)})
        elif message.role == "assistant":
            texts: list = []
            for part in message.parts:
                if isinstance(part, TextPart):
                    texts.append(part)
                    continue
                if texts:
                    items.append(_assistant_message(texts))
                    texts = []
                if isinstance(part, ReasoningPart):
                    if part.encrypted_content or (part.id and not is_gateway_id(part.id)):
                        items.append(_encode_reasoning_item(part, with_id=bool(part.id)))
                    else:
                        req.drop("messages[].reasoning")
                elif isinstance(part, ToolCallPart):
                    name = req.tool_names.to_upstream(part.name, OPENAI_NAME)
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": part.id,
                            "name": name,
                            "arguments": normalize_arguments(part.arguments),
                        }
                    )
            if texts:
                items.append(_assistant_message(texts))
        else:
            for result in message.parts:
                if isinstance(result, ToolResultPart):
                    items.append(
                        {
                            "type": "function_call_output",
                            "call_id": result.tool_call_id,
                            "output": _encode_tool_output(result),
                        }
                    )
    return items


def _assistant_message(texts: list[TextPart]) -> dict:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": t.text, "annotations": []} for t in texts],
    }


def _encode_tools(req: NeutralRequest) -> list[dict]:
    tools: list[dict] = []
    for tool in req.tools:
        if tool.raw is not None:
            if tool.raw_dialect == "responses":
                tools.append(tool.raw)
            else:
                req.drop(f"tools[{tool.name}]")
            continue
        item: dict[str, Any] = {
            "type": "function",
            "name": req.tool_names.to_upstream(tool.name, OPENAI_NAME),
            "parameters": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            item["description"] = tool.description
        if tool.strict is not None:
            item["strict"] = tool.strict
        tools.append(item)
    return tools


def _encode_tool_choice(req: NeutralRequest, choice: ToolChoice) -> Any:
    if choice.mode == "tool" and choice.name:
        return {"type": "function", "name": req.tool_names.to_upstream(choice.name, OPENAI_NAME)}
    return choice.mode if choice.mode != "tool" else "auto"


def _encode_format(fmt: ResponseFormat) -> dict:
    if fmt.type == "json_schema":
        out: dict[str, Any] = {
            "type": "json_schema",
            "name": fmt.name or "response",
            "schema": fmt.schema or {"type": "object"},
        }
        if fmt.strict is not None:
            out["strict"] = fmt.strict
        return out
    return {"type": fmt.type}


# --- responses -------------------------------------------------------------------------------


def encode_usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def decode_usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    details_in = value.get("input_tokens_details") or {}
    details_out = value.get("output_tokens_details") or {}
    return Usage(
        input_tokens=value.get("input_tokens") or 0,
        output_tokens=value.get("output_tokens") or 0,
        cached_tokens=details_in.get("cached_tokens") or 0,
        reasoning_tokens=details_out.get("reasoning_tokens") or 0,
    )


def estimated_usage(req: NeutralRequest, output: list[dict]) -> Usage:
    """Usage when the upstream reported none: the prompt estimate and ~4 characters a token."""
    chars = len(orjson.dumps(output)) if output else 0
    return Usage(input_tokens=estimate_tokens(req), output_tokens=-(-chars // 4))


def response_shell(req: NeutralRequest, response_id: str, created_at: int, model: str) -> dict:
    """A Response object with no output yet, repeating the request's settings."""
    echo = req.echo if isinstance(req, ResponsesRequest) else {}
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "usage": None,
    }
    for key in ECHO_FIELDS:
        value = echo.get(key)
        body[key] = value if value is not None else ECHO_DEFAULTS.get(key)
    return body


def finish_shell(body: dict, status: str, reason: StopReason | None, usage: Usage) -> None:
    body["status"] = status
    if status == "incomplete":
        body["incomplete_details"] = {"reason": INCOMPLETE_REASONS.get(reason or "")}
    if status == "completed":
        body["completed_at"] = int(time.time())
    body["usage"] = encode_usage(usage)


def status_of(reason: StopReason | None) -> str:
    return "incomplete" if reason in INCOMPLETE_REASONS else "completed"


def stop_reason_of(body: dict, has_calls: bool) -> StopReason:
    if body.get("status") == "incomplete":
        why = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if why == "content_filter" else "length"
    if body.get("status") == "failed":
        return "error"
    return "tool_calls" if has_calls else "stop"


def _message_item(item_id: str, text: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _call_item(item_id: str, call: ToolCallPart, name: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": name,
        "arguments": normalize_arguments(call.arguments),
    }


def output_items(resp: NeutralResponse, req: NeutralRequest) -> list[dict]:
    items: list[dict] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            items.append(_message_item(gateway_id("msg_"), "".join(texts)))
            texts.clear()

    for part in resp.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ReasoningPart):
            flush()
            item = _encode_reasoning_item(part, with_id=True)
            item["status"] = "completed"
            items.append(item)
        elif isinstance(part, ToolCallPart):
            flush()
            if part.signature:
                items.append(call_signature_item(part.signature))
            name = req.tool_names.to_client(part.name)
            items.append(_call_item(gateway_id("fc_"), part, name))
    flush()
    return items


# --- the dialect -----------------------------------------------------------------------------


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
            decoder = _InputDecoder(req)
            for i, item in enumerate(instructions):
                decoder.item(expect(item, dict, f"instructions[{i}]"), f"instructions[{i}]")
        items = body.get("input")
        if isinstance(items, str):
            req.messages.append(Message("user", [TextPart(items)]))
        elif items is not None:
            expect(items, list, "input")
            decoder = _InputDecoder(req)
            for i, item in enumerate(items):
                expect(item, dict, f"input[{i}]")
                decoder.item(item, f"input[{i}]")
        if body.get("tools") is not None:
            _decode_tools(req, body["tools"])
        req.tool_choice = _decode_tool_choice(req, body.get("tool_choice"))
        if isinstance(body.get("parallel_tool_calls"), bool):
            req.parallel_tool_calls = body["parallel_tool_calls"]
        req.stream = body.get("stream") is True
        req.stream_include_usage = True
        req.max_tokens = optional_int(body, "max_output_tokens")
        req.temperature = optional_number(body, "temperature")
        req.top_p = optional_number(body, "top_p")
        req.user = body.get("user") if isinstance(body.get("user"), str) else None
        req.response_format = _decode_text_format(body.get("text"))
        req.reasoning = _decode_reasoning(body.get("reasoning"))
        req.extra = {k: v for k, v in body.items() if k not in CONSUMED_FIELDS}
        return req

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        body: dict[str, Any] = {"model": upstream_model, "input": encode_input(req)}
        if req.system:
            body["instructions"] = req.system_text()
        if req.tools:
            tools = _encode_tools(req)
            if tools:
                body["tools"] = tools
        if req.tool_choice and (req.tools or req.tool_choice.mode == "none"):
            body["tool_choice"] = _encode_tool_choice(req, req.tool_choice)
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
            body["text"] = {"format": _encode_format(req.response_format)}
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
                parts.append(_decode_reasoning_item(item))
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


# --- streams: Responses upstream -> neutral --------------------------------------------------


class ResponsesStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.calls: dict[str, int] = {}  # item id -> neutral tool-call index
        self.with_arguments: set[int] = set()
        self.reasoning_text: set[str] = set()  # reasoning items whose text was streamed

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        if not ev.data:
            return []
        try:
            data = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or ev.event or ""
        out: list[NeutralEvent] = []
        if kind == "response.created" or (not self.started and kind.startswith("response.")):
            if not self.started:
                self.started = True
                response = data.get("response") or {}
                out.append(
                    Start(
                        response.get("id") or gateway_id("resp_"),
                        response.get("model") or "",
                        int(response["created_at"]) if response.get("created_at") else None,
                    )
                )
            if kind == "response.created":
                return out
        self._event(kind, data, out)
        return out

    def _event(self, kind: str, data: dict, out: list[NeutralEvent]) -> None:
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            if data.get("delta"):
                out.append(TextDelta(data["delta"]))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if data.get("delta"):
                self.reasoning_text.add(str(data.get("item_id")))
                out.append(ReasoningDelta(data["delta"]))
        elif kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") == "function_call":
                index = len(self.calls)
                self.calls[str(item.get("id") or index)] = index
                call_id = item.get("call_id") or gateway_id("call_")
                out.append(ToolCallStart(index, call_id, item.get("name") or ""))
        elif kind == "response.function_call_arguments.delta":
            index = self.calls.get(str(data.get("item_id")))
            if index is not None and data.get("delta"):
                self.with_arguments.add(index)
                out.append(ToolCallDelta(index, data["delta"]))
        elif kind == "response.output_item.done":
            self._item_done(data.get("item") or {}, out)
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response") or {}
            usage = decode_usage(response.get("usage"))
            if usage is not None:
                out.append(UsageEvent(usage))
            self.stopped = True
            out.append(Stop(stop_reason_of(response, bool(self.calls))))
        elif kind == "response.failed":
            error = (data.get("response") or {}).get("error") or {}
            self.stopped = True
            out.append(ErrorEvent(502, str(error.get("message") or "upstream response failed")))
        elif kind == "error":
            self.stopped = True
            out.append(ErrorEvent(502, str(data.get("message") or "upstream error")))

    def _item_done(self, item: dict, out: list[NeutralEvent]) -> None:
        kind = item.get("type")
        if kind == "function_call":
            index = self.calls.get(str(item.get("id")))
            if index is None:
                return
            if index not in self.with_arguments and item.get("arguments"):
                out.append(ToolCallDelta(index, item["arguments"]))
            out.append(ToolCallEnd(index))
        elif kind == "reasoning":
            part = _decode_reasoning_item(item)
            if str(item.get("id")) not in self.reasoning_text and part.text:
                out.append(ReasoningDelta(part.text))
            if part.encrypted_content:
                out.append(ReasoningDelta(encrypted_content=part.encrypted_content))

    def finish(self) -> list[NeutralEvent]:
        if self.stopped:
            return []
        return [ErrorEvent(502, TRUNCATED)]


# --- streams: neutral -> Responses client ----------------------------------------------------


@dataclass(slots=True)
class _Item:
    """One output item being streamed."""

    index: int
    body: dict
    kind: str  # "message" | "reasoning" | "function_call" | "signature" (of the next call)
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None
    encrypted: str | None = None
    open: bool = True


class ResponsesStreamEncoder(StreamEncoder):
    """Writes the whole Responses event sequence, numbered, with stable ids.

    Deltas are accumulated because the closing events (`.done`, `response.completed`) carry the
    full text; that is the Responses wire format, not a choice.
    """

    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.seq = 0
        self.response: dict | None = None
        self.items: list[_Item] = []
        self.current: _Item | None = None  # open message or reasoning item
        self.calls: dict[int, _Item] = {}  # neutral tool-call index -> item
        self.usage: Usage | None = None
        self.reason: StopReason | None = None
        self.done = False

    def _event(self, kind: str, payload: dict) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **payload}
        self.seq += 1
        return encode_event(dumps(payload), kind)

    def _start(self, ev: Start | None = None) -> bytes:
        created = (ev.created if ev else None) or int(time.time())
        model = (ev.model if ev else None) or self.req.model
        self.response = response_shell(self.req, gateway_id("resp_"), created, model)
        snapshot = dict(self.response)
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def encode(self, ev: NeutralEvent) -> bytes:
        if self.done:
            return b""
        head = b""
        if self.response is None:
            head = self._start(ev if isinstance(ev, Start) else None)
        if isinstance(ev, Start):
            return head
        if isinstance(ev, ErrorEvent):
            return head + self.error(ev.status, ev.message)
        if isinstance(ev, UsageEvent):
            self.usage = merge_usage(self.usage, ev.usage)
            return head
        return head + self._body(ev)

    def _body(self, ev: NeutralEvent) -> bytes:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            out = self._open("message")
            assert self.current is not None
            self.current.text.append(ev.text)
            return out + self._event(
                "response.output_text.delta",
                {**self._where(self.current), "content_index": 0, "delta": ev.text, "logprobs": []},
            )
        if isinstance(ev, ReasoningDelta):
            return self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            return self._call_start(ev)
        if isinstance(ev, ToolCallDelta):
            item = self.calls.get(ev.index)
            if item is None or not ev.arguments:
                return b""
            item.text.append(ev.arguments)
            return self._event(
                "response.function_call_arguments.delta",
                {**self._where(item), "delta": ev.arguments},
            )
        if isinstance(ev, ToolCallEnd):
            item = self.calls.get(ev.index)
            return self._close(item) if item is not None else b""
        if isinstance(ev, Stop):
            self.reason = ev.reason
            return self._close_all()
        return b""

    # --- items -----------------------------------------------------------------------------

    def _where(self, item: _Item) -> dict:
        return {"item_id": item.body["id"], "output_index": item.index}

    def _new_item(self, kind: str, body: dict) -> tuple[_Item, bytes]:
        item = _Item(len(self.items), body, kind)
        self.items.append(item)
        added = self._event(
            "response.output_item.added", {"output_index": item.index, "item": dict(body)}
        )
        return item, added

    def _open(self, kind: str) -> bytes:
        if self.current is not None and self.current.kind == kind:
            return b""
        out = self._close(self.current) if self.current is not None else b""
        if kind == "message":
            body = {
                "id": gateway_id("msg_"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            item, added = self._new_item(kind, body)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            added += self._event(
                "response.content_part.added",
                {**self._where(item), "content_index": 0, "part": part},
            )
        else:
            body = {"id": gateway_id("rs_"), "type": "reasoning", "summary": []}
            item, added = self._new_item(kind, body)
        self.current = item
        return out + added

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        out = b""
        current = self.current
        # A signature closes a thinking block; text after it starts a new reasoning item.
        if ev.text and current is not None and current.kind == "reasoning" and current.signature:
            out += self._close(current)
        if ev.redacted and current is not None and current.kind == "reasoning" and current.text:
            out += self._close(current)
        out += self._open("reasoning")
        item = self.current
        assert item is not None
        if ev.text:
            if not item.text:
                part = {"type": "summary_text", "text": ""}
                out += self._event(
                    "response.reasoning_summary_part.added",
                    {**self._where(item), "summary_index": 0, "part": part},
                )
            item.text.append(ev.text)
            out += self._event(
                "response.reasoning_summary_text.delta",
                {**self._where(item), "summary_index": 0, "delta": ev.text},
            )
        item.signature = ev.signature or item.signature
        item.redacted = ev.redacted or item.redacted
        item.encrypted = ev.encrypted_content or item.encrypted
        return out

    def _call_start(self, ev: ToolCallStart) -> bytes:
        out = self._close(self.current) if self.current is not None else b""
        if ev.signature:
            signed = call_signature_item(ev.signature)
            item, added = self._new_item("signature", signed)
            item.open = False
            out += added + self._event(
                "response.output_item.done", {"output_index": item.index, "item": signed}
            )
        body = {
            "id": gateway_id("fc_"),
            "type": "function_call",
            "status": "in_progress",
            "call_id": ev.id,
            "name": self.req.tool_names.to_client(ev.name),
            "arguments": "",
        }
        item, added = self._new_item("function_call", body)
        self.calls[ev.index] = item
        return out + added

    def _close(self, item: _Item) -> bytes:
        if not item.open:
            return b""
        item.open = False
        if self.current is item:
            self.current = None
        status = "incomplete" if self.reason in INCOMPLETE_REASONS else "completed"
        body = item.body
        out = b""
        text = "".join(item.text)
        where = self._where(item)
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out += self._event(
                "response.output_text.done",
                {**where, "content_index": 0, "text": text, "logprobs": []},
            )
            out += self._event(
                "response.content_part.done", {**where, "content_index": 0, "part": part}
            )
            body["content"] = [part]
        elif item.kind == "reasoning":
            if text:
                out += self._event(
                    "response.reasoning_summary_text.done",
                    {**where, "summary_index": 0, "text": text},
                )
                part = {"type": "summary_text", "text": text}
                out += self._event(
                    "response.reasoning_summary_part.done",
                    {**where, "summary_index": 0, "part": part},
                )
                body["summary"] = [part]
            token = reasoning_token(
                ReasoningPart(
                    signature=item.signature,
                    redacted=item.redacted,
                    encrypted_content=item.encrypted,
                )
            )
            if token is not None:
                body["encrypted_content"] = token
        else:
            arguments = normalize_arguments(text)
            out += self._event(
                "response.function_call_arguments.done",
                {**where, "name": body["name"], "arguments": arguments},
            )
            body["arguments"] = arguments
        body["status"] = status
        return out + self._event(
            "response.output_item.done", {"output_index": item.index, "item": body}
        )

    def _close_all(self) -> bytes:
        out = b""
        for item in self.items:
            out += self._close(item)
        return out

    # --- end -------------------------------------------------------------------------------

    def _final(self, status: str) -> dict:
        assert self.response is not None
        body = self.response
        body["output"] = [item.body for item in self.items]
        usage = self.usage or estimated_usage(self.req, body["output"])
        finish_shell(body, status, self.reason, usage)
        return body

    def error(self, status: int, message: str) -> bytes:
        if self.done:
            return b""
        out = b"" if self.response is not None else self._start()
        self.reason = self.reason or "error"
        for item in self.items:
            if item.open:
                item.open = False
                item.body["status"] = "incomplete"
                if item.kind == "function_call":
                    item.body["arguments"] = "".join(item.text)
                elif item.kind == "message":
                    item.body["content"] = [
                        {"type": "output_text", "text": "".join(item.text), "annotations": []}
                    ]
        body = self._final("failed")
        code = "rate_limit_exceeded" if status == 429 else "server_error"
        body["error"] = {"code": code, "message": message}
        self.done = True
        return out + self._event("response.failed", {"response": body})

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = b"" if self.response is not None else self._start()
        out += self._close_all()
        status = status_of(self.reason)
        self.done = True
        return out + self._event(f"response.{status}", {"response": self._final(status)})
