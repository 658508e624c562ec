"""OpenAI Responses request body (a client's) -> NeutralRequest."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.base import expect, json_text, normalize_arguments, opt, split_data_url
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
from apex_ai_proxy.dialects.responses.reasoning_tokens import call_signature, read_token
from apex_ai_proxy.errors import BadRequest


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
            parts.append(_decode_image(item, at))
        elif kind == "input_file":
            parts.append(_decode_file(item, at))
        else:
            req.drop(f"{where}[].{kind if isinstance(kind, str) else 'unknown'}")
    return parts


def _decode_image(item: dict, at: str) -> ImagePart | FilePart:
    url = opt(item, "image_url", str, f"{at}.image_url")
    detail = opt(item, "detail", str, f"{at}.detail")
    file_id = opt(item, "file_id", str, f"{at}.file_id")
    inline = split_data_url(url) if url is not None else None
    if inline:
        return ImagePart(inline[0], inline[1], detail=detail)
    if url is not None:
        return ImagePart(url=url, detail=detail)
    if file_id is not None:
        return FilePart(file_id=file_id, media_type="image/*")
    raise BadRequest(f"'{at}' needs image_url or file_id", param=at)


def _decode_file(item: dict, at: str) -> FilePart:
    file_data = opt(item, "file_data", str, f"{at}.file_data")
    inline = split_data_url(file_data) if file_data is not None else None
    return FilePart(
        media_type=inline[0] if inline else None,
        data=inline[1] if inline else file_data,
        url=opt(item, "file_url", str, f"{at}.file_url"),
        file_id=opt(item, "file_id", str, f"{at}.file_id"),
        filename=opt(item, "filename", str, f"{at}.filename"),
    )


def decode_reasoning_item(item: dict) -> ReasoningPart:
    summary = _texts(item.get("summary"))
    content = _texts(item.get("content"))
    part = ReasoningPart(
        text="".join(content) if content else "".join(summary),
        summary=summary,
        id=item.get("id") if isinstance(item.get("id"), str) else None,
    )
    if isinstance(item.get("encrypted_content"), str):
        read_token(part, item["encrypted_content"])
    return part


def _texts(entries: Any) -> list[str]:
    """The `text` of each entry of a reasoning item's summary or content; lenient (the items
    come back from an earlier answer): what is not text is left out."""
    if not isinstance(entries, list):
        return []
    return [e["text"] for e in entries if isinstance(e, dict) and isinstance(e.get("text"), str)]


def _decode_output(value: Any, where: str, req: NeutralRequest) -> list:
    if isinstance(value, str):
        return [TextPart(value)]
    if isinstance(value, list):
        return _decode_content(value, where, req)
    if value is None:
        return []
    return [TextPart(json_text(value))]


class InputDecoder:
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
            self.call_signature = call_signature(item)
            if self.call_signature is None:
                self._append("assistant", decode_reasoning_item(item))
        else:
            self.req.drop(f"input[].{kind if isinstance(kind, str) else 'unknown'}")

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


def decode_tools(req: NeutralRequest, tools: Any) -> None:
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
                opt(tool, "description", str, f"{at}.description"),
                opt(tool, "parameters", dict, f"{at}.parameters"),
                opt(tool, "strict", bool, f"{at}.strict"),
            )
        )


def decode_tool_choice(req: NeutralRequest, value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ("auto", "none", "required"):
        return ToolChoice(value)  # type: ignore[arg-type]
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "function" and isinstance(value.get("name"), str):
            return ToolChoice("tool", value["name"])
        if kind == "allowed_tools":
            mode = value.get("mode")
            return ToolChoice(mode if mode in ("auto", "required") else "auto")
        req.drop(f"tool_choice.{kind if isinstance(kind, str) else 'unknown'}")
        return ToolChoice("auto")
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a tool object", param="tool_choice"
    )


def decode_text_format(value: Any) -> ResponseFormat | None:
    if not isinstance(value, dict):
        return None
    fmt = value.get("format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        at = "text.format"
        return ResponseFormat(
            "json_schema",
            opt(fmt, "schema", dict, f"{at}.schema"),
            opt(fmt, "name", str, f"{at}.name"),
            opt(fmt, "strict", bool, f"{at}.strict"),
        )
    if kind == "json_object":
        return ResponseFormat("json_object")
    return None


def decode_reasoning(value: Any) -> Reasoning | None:
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
