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

Modules:
    ids.py              ids the gateway makes (`…_apx…`) and how to recognise them
    reasoning_tokens.py the `apx1:` tokens carrying signatures in `encrypted_content`
    request_decode.py   a client's Responses request -> NeutralRequest
    request_encode.py   NeutralRequest -> an upstream Responses request
    response.py         Response objects: shell, echoed settings, output items, usage
    stream_decode.py    upstream events -> neutral events
    stream_encode.py    neutral events -> a client's numbered event sequence
    stream_position.py  where a relayed stream stood when it broke (for its failed event)
    dialect.py          ResponsesDialect, the Dialect interface over the above
"""

from apex_ai_proxy.dialects.responses.dialect import CONSUMED_FIELDS, ResponsesDialect
from apex_ai_proxy.dialects.responses.ids import GATEWAY_ID_MARK, gateway_id, is_gateway_id
from apex_ai_proxy.dialects.responses.reasoning_tokens import (
    TOKEN_PREFIX,
    call_signature_item,
    reasoning_token,
)
from apex_ai_proxy.dialects.responses.request_encode import encode_input
from apex_ai_proxy.dialects.responses.response_object import (
    ECHO_DEFAULTS,
    ECHO_FIELDS,
    INCOMPLETE_REASONS,
    ResponsesRequest,
    decode_usage,
    encode_usage,
    estimated_usage,
    finish_shell,
    output_items,
    response_shell,
    status_of,
    stop_reason_of,
)
from apex_ai_proxy.dialects.responses.stream_decode import ResponsesStreamDecoder
from apex_ai_proxy.dialects.responses.stream_encode import ResponsesStreamEncoder

__all__ = [
    "CONSUMED_FIELDS",
    "ECHO_DEFAULTS",
    "ECHO_FIELDS",
    "GATEWAY_ID_MARK",
    "INCOMPLETE_REASONS",
    "ResponsesDialect",
    "ResponsesRequest",
    "ResponsesStreamDecoder",
    "ResponsesStreamEncoder",
    "TOKEN_PREFIX",
    "call_signature_item",
    "decode_usage",
    "encode_input",
    "encode_usage",
    "estimated_usage",
    "finish_shell",
    "gateway_id",
    "is_gateway_id",
    "output_items",
    "reasoning_token",
    "response_shell",
    "status_of",
    "stop_reason_of",
]
