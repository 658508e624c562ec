"""The interface every dialect implements, and small helpers they share.

A dialect converts between its wire format and the neutral form, in both directions, for
requests, whole responses and stream events. The pipeline calls it only when the client's
dialect differs from the upstream's (same dialect is relayed untouched).

    client body --decode_request--> NeutralRequest --encode_request--> upstream body
    upstream body --decode_response--> NeutralResponse --encode_response--> client body
    upstream SSE --stream_decoder().feed--> [NeutralEvent] --stream_encoder(req).encode--> client SSE
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

import orjson

from apex_ai_proxy.dialects.neutral import (
    NeutralEvent,
    NeutralRequest,
    NeutralResponse,
    StopReason,
    Usage,
)
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.sse import SSEEvent


class StreamDecoder:
    """Upstream SSE events in, neutral events out. Keeps per-stream state."""

    def feed(self, ev: SSEEvent) -> list[NeutralEvent]:
        raise NotImplementedError

    def finish(self) -> list[NeutralEvent]:
        """Called when the upstream stream ends; reports a truncated stream as an ErrorEvent."""
        raise NotImplementedError


class StreamEncoder:
    """Neutral events in, complete SSE frames of the client's dialect out."""

    def encode(self, ev: NeutralEvent) -> bytes:
        raise NotImplementedError

    def error(self, status: int, message: str) -> bytes:
        """The dialect's mid-stream error frame (after which the stream ends)."""
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError


class Dialect:
    name: ClassVar[str]

    def decode_request(self, body: dict) -> NeutralRequest:
        raise NotImplementedError

    def encode_request(self, req: NeutralRequest, upstream_model: str, stream: bool) -> dict:
        raise NotImplementedError

    def decode_response(self, body: dict) -> NeutralResponse:
        raise NotImplementedError

    def encode_response(self, resp: NeutralResponse, req: NeutralRequest) -> dict:
        raise NotImplementedError

    def stream_decoder(self) -> StreamDecoder:
        raise NotImplementedError

    def stream_encoder(self, req: NeutralRequest) -> StreamEncoder:
        raise NotImplementedError

    def usage_of_response(self, body: dict) -> Usage | None:
        raise NotImplementedError


# --- helpers ---------------------------------------------------------------------------------

TRUNCATED = "upstream stream ended before the response was complete"
NOT_AN_OBJECT = "upstream sent a stream event that is not a JSON object"


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


MAX_JSON_DEPTH = 254  # orjson writes no deeper (it reads up to 1024 levels)


def text_field(value: object) -> str:
    """A string field of what an upstream or a client sent, or "" when it is absent or of
    another type: a malformed event must not carry a list or an object into the neutral form
    (the encoders join text as strings)."""
    return value if isinstance(value, str) else ""


def dumps(value: Any) -> bytes:
    """JSON of something a client sent, re-encoded: a 400 when it nests too deep to write."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise BadRequest(
            f"The request nests JSON deeper than {MAX_JSON_DEPTH} levels; flatten it."
        ) from None


def json_text(value: Any) -> str:
    return dumps(value).decode()


def parse_arguments(text: str | None) -> dict:
    """Tool-call arguments as an object; "" and invalid JSON become {} (never a crash)."""
    if not text or not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def normalize_arguments(text: str | None) -> str:
    """Arguments JSON text as a tool call carries it: "{}" for a call without arguments."""
    return text if text and text.strip() else "{}"


def require(body: dict, key: str, kind: type | tuple[type, ...], where: str | None = None) -> Any:
    value = body.get(key)
    if value is None:
        raise BadRequest(f"'{where or key}' is required", param=where or key)
    return expect(value, kind, where or key)


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """`value` when it is of `kind`, else a 400 naming the field's path."""
    if isinstance(value, kind) and (
        type(value) is not bool or kind is bool or (isinstance(kind, tuple) and bool in kind)
    ):
        return value  # (True is an int to Python, not to JSON)
    raise BadRequest(f"'{where}' must be {_described(kind)}", param=where)


def opt(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`obj[key]` when absent or null (None) or of `kind`; a 400 naming `where` otherwise.

    What a decoder puts in the neutral form goes through here (or `expect`): encoders can then
    trust the types, and a wrong type is the client's 400, never a crash further on."""
    value = obj.get(key)
    if value is None:
        return None
    return expect(value, kind, where)


_WORDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def _described(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words = [_WORDS.get(k, k.__name__) for k in kinds if not (k is int and float in kinds)]
    return " or ".join(dict.fromkeys(words))


def count_of(value: Any) -> int:
    """A token count from an upstream: a non-negative integer, anything else 0."""
    return value if type(value) is int and value > 0 else 0


def optional_number(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"'{key}' must be a number", param=key)
    return value


def optional_int(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{key}' must be an integer", param=key)
    return value


def stop_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f"'{where}' must be a string or an array of strings", param=where)


def split_data_url(url: str) -> tuple[str, str] | None:
    """`data:image/png;base64,AAAA` -> ("image/png", "AAAA"); None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")] or "application/octet-stream", data


def data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def merge_usage(old: Usage | None, new: Usage) -> Usage:
    """Cumulative usage: later non-zero numbers win, zeros keep what was known."""
    if old is None:
        return new
    return Usage(
        input_tokens=new.input_tokens or old.input_tokens,
        output_tokens=new.output_tokens or old.output_tokens,
        cached_tokens=new.cached_tokens or old.cached_tokens,
        cache_creation_tokens=new.cache_creation_tokens or old.cache_creation_tokens,
        reasoning_tokens=new.reasoning_tokens or old.reasoning_tokens,
    )


STOP_REASONS: tuple[StopReason, ...] = (
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "stop_sequence",
    "error",
)

# Reasoning effort -> thinking budget in tokens (Anthropic `budget_tokens`, Gemini
# `thinkingBudget`). 1024 is Anthropic's minimum budget. The reverse direction (budget ->
# effort, for OpenAI upstreams) uses thresholds between these values: < 4096 low,
# < 16384 medium, else high.
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}
DEFAULT_BUDGET = EFFORT_BUDGETS["medium"]


def budget_of(effort: str | None, budget_tokens: int | None) -> int:
    if budget_tokens:
        return budget_tokens
    return EFFORT_BUDGETS.get(effort or "", DEFAULT_BUDGET)
