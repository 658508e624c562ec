"""Valid request bodies per schema, one-path mutations of them, and the dialect shape checks.

BODIES[endpoint]           a rich valid body for each model endpoint (tools, images, tool
                           results, options), the seed every mutation starts from
paths(body)                every JSON path in a body, e.g. ("messages", 2, "content", 0)
mutated(draw, body)        the body with one to three paths set to another JSON value
                           (wrong type, control characters, huge number, deep nesting…)
                           or removed
assert_error_shape(...)    the body is an error in the endpoint's dialect, with a message
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import strategies as st

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

CHAT = {
    "model": "MODEL",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
    "max_tokens": 64,
    "temperature": 0.5,
    "stop": ["END"],
    "reasoning_effort": "low",
    "stream": False,
}

MESSAGES = {
    "model": "MODEL",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "document", "source": {"type": "text", "data": "notes"}, "title": "n"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"city": "P"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "tu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "temperature": 1,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u1"},
    "stream": False,
}

RESPONSES = {
    "model": "MODEL",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "description": "W", "parameters": SCHEMA}
    ],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}},
    "reasoning": {"effort": "low", "summary": "auto"},
    "max_output_tokens": 64,
    "temperature": 0.5,
    "store": False,
    "stream": False,
}

EMBEDDINGS = {"model": "MODEL", "input": ["hello", "world"], "encoding_format": "float"}

BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": CHAT,
    "/v1/messages": MESSAGES,
    "/v1/messages/count_tokens": {
        k: v for k, v in MESSAGES.items() if k not in ("max_tokens", "stream")
    },
    "/v1/responses": RESPONSES,
    "/v1/embeddings": EMBEDDINGS,
}
ANTHROPIC_ENDPOINTS = ("/v1/messages", "/v1/messages/count_tokens")

Path = tuple[Any, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path below `value` (not the root itself)."""
    found: list[Path] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found.append(prefix + (key,))
        found.extend(paths(child, prefix + (key,)))
    return found


def _deep(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


CONTROL_TEXT = st.text(
    alphabet=st.sampled_from(["\r", "\n", "\x00", "\x1b", "\t", "a", "é", "\u2028", "#", ":"]),
    max_size=12,
)
# Values a field may wrongly get: every JSON type, edge numbers, odd strings, deep nesting.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, -1, 2**53 + 1, 10**30, 1e308, -0.0, 0.5]),
    st.floats(allow_nan=False, allow_infinity=False),
    CONTROL_TEXT,
    st.sampled_from(["", " ", "data:,", "data:image/png;base64,!!", "{", "[]", "null", "\x00"]),
    st.just([]),
    st.just({}),
    st.builds(_deep, st.sampled_from([60, 256])),  # orjson re-encodes at most 254 levels
    st.lists(st.one_of(st.integers(), st.text(max_size=3), st.just({})), max_size=3),
    st.dictionaries(st.sampled_from(["type", "text", "name", "url"]), st.integers(), max_size=2),
)
DELETE = object()


def _set(body: Any, path: Path, value: Any) -> None:
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if value is DELETE:
        del parent[last]
    else:
        parent[last] = value


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        candidates = paths(out)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        value = draw(st.one_of(ODD_VALUES, st.just(DELETE)))
        _set(out, path, value)
    return out


def assert_error_shape(endpoint: str, status: int, raw: bytes) -> None:
    """An error answer in the endpoint's dialect, with a message a person can read."""
    body = orjson.loads(raw)
    assert isinstance(body, dict), raw[:300]
    if endpoint in ANTHROPIC_ENDPOINTS:
        assert body.get("type") == "error", raw[:300]
        error = body.get("error")
        assert isinstance(error, dict) and isinstance(error.get("type"), str), raw[:300]
    else:
        error = body.get("error")
        assert isinstance(error, dict), raw[:300]
    assert isinstance(error.get("message"), str) and error["message"].strip(), raw[:300]
