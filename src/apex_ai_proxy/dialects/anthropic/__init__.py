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
- Streams to Anthropic clients: Anthropic content blocks cannot interleave and a closed block
  takes no more, while upstreams may interleave the argument fragments of parallel calls. So a
  tool call streams live (block start at once, each fragment its own input_json_delta) when no
  other tool block is open; other calls, text and thinking arriving meanwhile are held in
  arrival order. When the live call ends, or the stream stops, its block closes and the held
  content follows in order: ended calls whole (fragments joined into one delta), text and
  thinking as their own blocks, and the first call still running goes live. A new call does
  not end the open one: OpenAI's wire format promises no order (hosts interleave) and its
  decoder ends calls only at finish_reason, so there a second call is held and reaches the
  client whole at the end of the message; with Anthropic, Responses and Gemini upstreams,
  which end each call, the next call goes live as soon as the previous one ends.

Modules:
    request_decode.py   a client's Messages request -> NeutralRequest
    request_encode.py   NeutralRequest -> an upstream Messages request
    response.py         whole responses: content blocks, stop reasons, usage
    stream_decode.py    upstream SSE events -> neutral events
    stream_encode.py    neutral events -> a client's SSE events
    dialect.py          AnthropicDialect, the Dialect interface over the above
"""

from apex_ai_proxy.dialects.anthropic.dialect import KNOWN_FIELDS, AnthropicDialect
from apex_ai_proxy.dialects.anthropic.request_encode import (
    DEFAULT_MAX_TOKENS,
    JSON_INSTRUCTION,
    MIN_THINKING_BUDGET,
)
from apex_ai_proxy.dialects.anthropic.response import (
    NEUTRAL_TO_STOP,
    STOP_TO_NEUTRAL,
    decode_usage,
    encode_usage,
)
from apex_ai_proxy.dialects.anthropic.stream_decode import ERROR_STATUS, AnthropicStreamDecoder
from apex_ai_proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder

__all__ = [
    "AnthropicDialect",
    "AnthropicStreamDecoder",
    "AnthropicStreamEncoder",
    "DEFAULT_MAX_TOKENS",
    "ERROR_STATUS",
    "JSON_INSTRUCTION",
    "KNOWN_FIELDS",
    "MIN_THINKING_BUDGET",
    "NEUTRAL_TO_STOP",
    "STOP_TO_NEUTRAL",
    "decode_usage",
    "encode_usage",
]
