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

Modules:
    request_decode.py   a client's Chat Completions request -> NeutralRequest
    request_encode.py   NeutralRequest -> an upstream Chat Completions request
    response.py         finish reasons and usage of whole responses and streams
    stream_decode.py    upstream chunks -> neutral events
    stream_encode.py    neutral events -> a client's chunks
    dialect.py          OpenAIChatDialect, the Dialect interface over the above
"""

from apex_ai_proxy.dialects.openai_chat.dialect import KNOWN_FIELDS, OpenAIChatDialect
from apex_ai_proxy.dialects.openai_chat.request_encode import BUDGET_TO_EFFORT
from apex_ai_proxy.dialects.openai_chat.response import (
    FINISH_TO_NEUTRAL,
    NEUTRAL_TO_FINISH,
    decode_usage,
    encode_usage,
)
from apex_ai_proxy.dialects.openai_chat.stream_decode import OpenAIChatStreamDecoder
from apex_ai_proxy.dialects.openai_chat.stream_encode import OpenAIChatStreamEncoder

__all__ = [
    "BUDGET_TO_EFFORT",
    "FINISH_TO_NEUTRAL",
    "KNOWN_FIELDS",
    "NEUTRAL_TO_FINISH",
    "OpenAIChatDialect",
    "OpenAIChatStreamDecoder",
    "OpenAIChatStreamEncoder",
    "decode_usage",
    "encode_usage",
]
