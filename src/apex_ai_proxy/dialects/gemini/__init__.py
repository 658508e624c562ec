"""Gemini generateContent / streamGenerateContent (v1beta) <-> the neutral form.

Decisions:
- The model lives in the URL for Gemini: the encoder never puts it in the body, and a
  Gemini-dialect client body is expected to carry it as `model` (endpoints/gemini.py copies it
  there from the path).
- Client requests are type-checked as they are decoded (a wrong type is a 400 naming the
  field); `parameters` and `parametersJsonSchema` are both read.
- Requests are read in camelCase or snake_case (`inlineData` / `inline_data`, …) and written in
  camelCase, which is what the API answers in.
- Tool calls have no ids on older models: ids are kept when present and synthesized otherwise;
  functionResponse parts are paired with calls by id, else by name in order. Ids are not
  sent upstream (functionResponse carries the function *name*).
- A tool result is sent as `{"result": text}` (`{"error": text}` when is_error), or as the
  object itself when the text is a JSON object. Images returned by a tool follow the
  functionResponse parts as inlineData parts of the same user turn.
- Thought signatures: a signature on a functionCall part travels as ToolCallPart.signature. A
  call without one (history produced by another model) gets Google's documented placeholder
  "skip_thought_signature_validator" on the first call of its turn (Gemini 3 rejects unsigned
  calls). Thought text is sent back only to the Gemini dialect's own clients' upstreams. The
  placeholder in a client's history (the Gemini CLI sends it) means "no signature": it never
  reaches another dialect. Signatures are base64 bytes to Google's SDKs: another vendor's
  signature that is not base64 is wrapped for Gemini clients and unwrapped when it comes back
  (response.client_signature / upstream_signature).
- Mid-conversation system messages become user text `<system-reminder>…</system-reminder>`.
- Schemas are cleaned with schema.gemini_schema; a tool without parameters has no
  `parameters` key (Gemini rejects an object schema with empty `properties`).
- Reasoning: enabled -> thinkingConfig {thinkingBudget (base.EFFORT_BUDGETS), includeThoughts},
  adaptive -> thinkingBudget -1, disabled -> thinkingBudget 0.
- JSON mode: responseMimeType application/json (+ responseSchema for json_schema).

Modules:
    request_decode.py   a client's generateContent request -> NeutralRequest
    request_encode.py   NeutralRequest -> an upstream generateContent request
    response.py         whole responses: parts, finish reasons, usage
    stream_decode.py    upstream chunks -> neutral events
    stream_encode.py    neutral events -> a client's chunks
    json_array.py       a client's stream re-framed as Google's JSON array (no `alt=sse`)
    dialect.py          GeminiDialect, the Dialect interface over the above
"""

from apex_ai_proxy.dialects.gemini.dialect import KNOWN_FIELDS, GeminiDialect
from apex_ai_proxy.dialects.gemini.request_encode import SKIP_SIGNATURE
from apex_ai_proxy.dialects.gemini.response import (
    FILTERED,
    FINISH_TO_NEUTRAL,
    NEUTRAL_TO_FINISH,
    decode_usage,
    encode_usage,
)
from apex_ai_proxy.dialects.gemini.stream_decode import GeminiStreamDecoder
from apex_ai_proxy.dialects.gemini.stream_encode import STATUS_NAMES, GeminiStreamEncoder

__all__ = [
    "FILTERED",
    "FINISH_TO_NEUTRAL",
    "GeminiDialect",
    "GeminiStreamDecoder",
    "GeminiStreamEncoder",
    "KNOWN_FIELDS",
    "NEUTRAL_TO_FINISH",
    "SKIP_SIGNATURE",
    "STATUS_NAMES",
    "decode_usage",
    "encode_usage",
]
