"""Read token usage out of responses in any dialect, for records and metrics.

Streams relayed on the fast path are not parsed; the dispatcher keeps the first and the last
few chunks, and `usage_from_stream` reads usage from those at the end.
"""

from __future__ import annotations

import re

import orjson

from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import Usage

_BRACES = re.compile(rb"[{}]")


def usage_from_body(dialect: str, data: object) -> Usage | None:
    """Usage from a whole response body, or one stream event, of `dialect`."""
    if not isinstance(data, dict):
        return None
    # Some stream events carry the object that holds usage one level down.
    if dialect == "anthropic" and "usage" not in data and isinstance(data.get("message"), dict):
        data = data["message"]
    elif dialect == "responses" and isinstance(data.get("response"), dict):
        data = data["response"]
    return get_dialect(dialect).usage_of_response(data)


def _merged(first: Usage, later: Usage) -> Usage:
    """Anthropic streams: message_start has the input side, message_delta the output side."""
    return Usage(
        later.input_tokens or first.input_tokens,
        later.output_tokens or first.output_tokens,
        later.cached_tokens or first.cached_tokens,
        later.cache_creation_tokens or first.cache_creation_tokens,
        later.reasoning_tokens or first.reasoning_tokens,
    )


def _event_with_object(data: bytes, key: bytes, from_end: bool) -> object | None:
    """The JSON of the SSE data line holding `key` followed by an object (not null).

    Found with byte searches, so a relayed stream is never run through the SSE parser: only
    the one line that carries usage is decoded.
    """
    pos = len(data) if from_end else 0
    while True:
        idx = data.rfind(key, 0, pos) if from_end else data.find(key, pos)
        if idx < 0:
            return None
        pos = idx if from_end else idx + len(key)
        if idx and data[idx - 1] == 0x5C:  # \" : inside a JSON string, not a key
            continue
        value = data[idx + len(key) : idx + len(key) + 8].lstrip()
        if not value.startswith(b"{"):
            continue  # "usage": null
        start = data.rfind(b"data:", 0, idx)
        end = data.find(b"\n", idx)
        if start < 0:
            continue
        try:
            return orjson.loads(data[start + 5 : end if end >= 0 else len(data)])
        except orjson.JSONDecodeError:
            continue


def usage_from_raw(dialect: str, raw: bytes) -> Usage | None:
    """Usage from a whole relayed body without decoding all of it: only the usage object.

    The object is cut out from its `{` to the matching `}` (usage objects hold numbers and
    nested objects), so a large answer costs a few byte searches and one small parse. Should
    that cut not parse (a brace inside a string), the whole body is decoded instead.
    """
    key = b'"usageMetadata":' if dialect == "gemini" else b'"usage":'
    idx = raw.rfind(key)
    if idx < 0:
        return None
    start = raw.find(b"{", idx + len(key), idx + len(key) + 8)
    if start < 0:
        return None  # "usage": null
    depth = 0
    for brace in _BRACES.finditer(raw, start):
        depth += 1 if raw[brace.start()] == 0x7B else -1
        if depth == 0:
            try:
                value = orjson.loads(raw[start : brace.end()])
            except orjson.JSONDecodeError:
                break
            wrapper = {"usageMetadata" if dialect == "gemini" else "usage": value}
            return get_dialect(dialect).usage_of_response(wrapper)
    try:
        return usage_from_body(dialect, orjson.loads(raw))
    except orjson.JSONDecodeError:
        return None


def usage_from_stream(dialect: str, head: bytes, tail: bytes) -> Usage | None:
    """Usage from the first chunk and the last bytes of a relayed SSE stream."""
    key = b'"usageMetadata":' if dialect == "gemini" else b'"usage":'
    found = usage_from_body(dialect, _event_with_object(tail, key, from_end=True))
    if dialect == "anthropic":
        # message_start carries the input side; message_delta (at the end) the output side.
        start = usage_from_body(dialect, _event_with_object(head, key, from_end=False))
        if start is not None and found is not None:
            return _merged(start, found)
        return start or found
    return found
