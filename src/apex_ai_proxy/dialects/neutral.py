"""The neutral form every dialect decodes into and encodes from (hub and spoke).

    NeutralRequest
    ├── system: [TextPart]                 top-level instructions (OpenAI leading system/developer,
    │                                      Anthropic `system`, Gemini systemInstruction)
    ├── messages: [Message]                role user | assistant | system (mid-conversation) | tool
    │   └── parts: TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ReasoningPart
    ├── tools: [ToolSpec], tool_choice: ToolChoice, parallel_tool_calls
    ├── sampling/limits, response_format: ResponseFormat, reasoning: Reasoning
    ├── extra: unknown top-level fields of the source (passed through to the same dialect only)
    ├── dropped: names of fields a target could not express (appended by encoders)
    └── tool_names: ToolNames (client name <-> upstream name, when a target rejects a name)

    NeutralResponse: id, model, parts, stop_reason, stop_sequence, usage

    Stream events: Start, TextDelta, ReasoningDelta, ToolCallStart, ToolCallDelta, ToolCallEnd,
                   UsageEvent, Stop, ErrorEvent

Conventions (every dialect converts at its edge):
- Tool results live in messages of role "tool" (one or more ToolResultPart each), whatever the
  source put them in (OpenAI `tool` messages, Anthropic `tool_result` blocks in a user turn,
  Gemini functionResponse parts, Responses function_call_output items).
- ToolCallPart.arguments is a JSON text, "{}" for a call without arguments (never "").
- Usage.input_tokens counts *all* prompt tokens, cached ones included (OpenAI convention);
  Usage.output_tokens counts all generated tokens, reasoning included.
- Stop reasons: "stop", "length", "tool_calls", "content_filter", "stop_sequence", "error".
- ReasoningPart carries what each vendor needs to get its reasoning back: Anthropic
  `signature` / redacted `data`, Gemini `thoughtSignature` (in `signature`), OpenAI Responses
  `encrypted_content`, `summary` and the item `id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from apex_ai_proxy.dialects.toolnames import ToolNames

Role = Literal["user", "assistant", "system", "tool"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter", "stop_sequence", "error"]


# --- content parts ---------------------------------------------------------------------------


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: dict | None = None  # Anthropic prompt-caching marker, kept where expressible


@dataclass(slots=True)
class ImagePart:
    """Either inline base64 `data` with its `media_type`, or a `url` (http(s) or file URI)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI low|high|auto
    cache_control: dict | None = None


@dataclass(slots=True)
class FilePart:
    """A document (PDF, text…): inline base64, a URL, or a provider file id."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    cache_control: dict | None = None


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str = "{}"  # JSON text
    signature: str | None = None  # Gemini thoughtSignature carried on a functionCall part


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart | FilePart] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None  # known when the source says it (Gemini) or resolved from history

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True)
class ReasoningPart:
    text: str = ""
    signature: str | None = None  # Anthropic thinking signature or Gemini thoughtSignature
    redacted: str | None = None  # Anthropic redacted_thinking data (text is then empty)
    encrypted_content: str | None = None  # OpenAI Responses reasoning item
    summary: list[str] = field(default_factory=list)  # OpenAI Responses summary_text parts
    id: str | None = None  # OpenAI Responses reasoning item id


Part = TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ReasoningPart


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)
    name: str | None = None  # OpenAI participant name

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


# --- tools and options -----------------------------------------------------------------------


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: dict | None = None  # JSON Schema, as the client sent it
    strict: bool | None = None
    cache_control: dict | None = None
    # A non-function tool (Anthropic server tool, Responses built-in…): kept verbatim, only
    # sent to the dialect it came from.
    raw: dict | None = None
    raw_dialect: str | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "required", "none", "tool"] = "auto"
    name: str | None = None  # when mode == "tool"


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Reasoning:
    """What the client asked about reasoning; each dialect maps it to its own knob.

    `effort` (minimal|low|medium|high|xhigh|none) and `budget_tokens` may both be set; `mode`
    is "enabled", "disabled" or "adaptive" (model decides)."""

    mode: Literal["enabled", "disabled", "adaptive"] | None = None
    effort: str | None = None
    budget_tokens: int | None = None
    include_thoughts: bool | None = None
    summary: str | None = None  # Responses reasoning.summary (auto|concise|detailed)


@dataclass(slots=True)
class NeutralRequest:
    model: str
    source_dialect: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextPart] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    stream_include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    tool_names: ToolNames = field(default_factory=lambda: ToolNames())

    def drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    def system_text(self) -> str:
        return "\n\n".join(p.text for p in self.system if p.text)


# --- responses -------------------------------------------------------------------------------


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # all prompt tokens, cached included
    output_tokens: int = 0  # all generated tokens, reasoning included
    cached_tokens: int = 0  # prompt tokens read from cache
    cache_creation_tokens: int = 0  # prompt tokens written to cache (Anthropic)
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class NeutralResponse:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None

    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


# --- stream events ---------------------------------------------------------------------------


@dataclass(slots=True)
class Start:
    type: ClassVar[str] = "start"  # what translate.py dispatches on
    id: str
    model: str
    created: int | None = None


@dataclass(slots=True)
class TextDelta:
    type: ClassVar[str] = "text"  # what translate.py dispatches on
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """Reasoning text, or the signature closing a reasoning block, or a redacted block."""

    type: ClassVar[str] = "reasoning"  # what translate.py dispatches on
    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    encrypted_content: str | None = None


@dataclass(slots=True)
class ToolCallStart:
    type: ClassVar[str] = "tool_call_start"  # what translate.py dispatches on
    index: int  # 0, 1, … in order of appearance in this response
    id: str
    name: str
    signature: str | None = None


@dataclass(slots=True)
class ToolCallDelta:
    type: ClassVar[str] = "tool_call_delta"  # what translate.py dispatches on
    index: int
    arguments: str


@dataclass(slots=True)
class ToolCallEnd:
    type: ClassVar[str] = "tool_call_end"  # what translate.py dispatches on
    index: int


@dataclass(slots=True)
class UsageEvent:
    type: ClassVar[str] = "usage"  # what translate.py dispatches on
    usage: Usage  # cumulative: a later event replaces an earlier one


@dataclass(slots=True)
class Stop:
    type: ClassVar[str] = "stop"  # what translate.py dispatches on
    reason: StopReason
    stop_sequence: str | None = None


@dataclass(slots=True)
class ErrorEvent:
    type: ClassVar[str] = "error"  # what translate.py dispatches on
    status: int
    message: str


NeutralEvent = (
    Start
    | TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageEvent
    | Stop
    | ErrorEvent
)
