"""The Responses dialect on its own: one named test per protocol edge case."""

from __future__ import annotations

import orjson
import pytest

from apex_ai_proxy.conversations.items import list_page, normalize_input
from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import (
    ErrorEvent,
    ReasoningDelta,
    ReasoningPart,
    Start,
    Stop,
    TextDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
)
from apex_ai_proxy.dialects.responses import ResponsesStreamEncoder, reasoning_token
from apex_ai_proxy.errors import BadRequest
from apex_ai_proxy.providers.responses import _foreign_item
from apex_ai_proxy.sse import SSEParser

RESPONSES = get_dialect("responses")
CHAT = get_dialect("openai_chat")


def events(raw: bytes) -> list[dict]:
    return [orjson.loads(e.data) for e in SSEParser().feed(raw)]


def test_string_input_is_one_user_message():
    req = RESPONSES.decode_request({"model": "m", "input": "hi"})
    assert [(m.role, m.text()) for m in req.messages] == [("user", "hi")]


def test_leading_developer_messages_join_instructions_later_ones_stay_in_place():
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "instructions": "rules",
            "input": [
                {"role": "developer", "content": "env"},
                {"role": "user", "content": "q"},
                {"role": "system", "content": "late"},
            ],
        }
    )
    assert [p.text for p in req.system] == ["rules", "env"]
    assert [(m.role, m.text()) for m in req.messages] == [("user", "q"), ("system", "late")]


def test_reasoning_message_and_calls_form_one_assistant_turn_outputs_one_tool_turn():
    token = reasoning_token(ReasoningPart(signature="sig"))
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "t"}],
                    "encrypted_content": token,
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "calling"}],
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": ""},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "r1"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "r2"}],
                },
            ],
        }
    )
    assistant, tool = req.messages[1], req.messages[2]
    assert [type(p).__name__ for p in assistant.parts] == [
        "ReasoningPart",
        "TextPart",
        "ToolCallPart",
        "ToolCallPart",
    ]
    assert assistant.parts[0].signature == "sig" and assistant.parts[0].text == "t"
    assert assistant.parts[2].arguments == "{}"  # empty arguments become "{}"
    assert [(r.tool_call_id, r.name, r.text()) for r in tool.parts] == [
        ("c1", "f", "r1"),
        ("c2", "g", "r2"),
    ]
    assert len(req.messages) == 3


def test_openai_encrypted_content_is_kept_verbatim():
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "input": [
                {
                    "type": "reasoning",
                    "id": "rs_x",
                    "summary": [],
                    "encrypted_content": "gAAAA-opaque",
                }
            ],
        }
    )
    part = req.messages[0].parts[0]
    assert (part.encrypted_content, part.signature, part.id) == ("gAAAA-opaque", None, "rs_x")


def test_redacted_thinking_round_trips_through_the_token():
    part = ReasoningPart(redacted="blob")
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "input": [
                {"type": "reasoning", "summary": [], "encrypted_content": reasoning_token(part)}
            ],
        }
    )
    assert req.messages[0].parts[0].redacted == "blob"


def test_unknown_items_tools_and_fields_never_fail_and_are_recorded():
    body = {
        "model": "m",
        "input": [{"role": "user", "content": "q"}, {"type": "web_search_call", "id": "ws_1"}],
        "tools": [
            {"type": "function", "name": "f", "parameters": {}},
            {"type": "web_search"},
            {"type": "future_kind"},
        ],
        "tool_choice": {"type": "web_search"},
        "brand_new_field": {"x": 1},
        "prompt_cache_key": "k",
    }
    req = RESPONSES.decode_request(body)
    assert [t.name for t in req.tools if t.raw is None] == ["f"]
    assert req.extra == {"brand_new_field": {"x": 1}, "prompt_cache_key": "k"}
    out = CHAT.encode_request(req, "up", False)
    assert [t["function"]["name"] for t in out["tools"]] == ["f"]
    assert "brand_new_field" not in out
    for name in (
        "input[].web_search_call",
        "tools[web_search]",
        "tools[future_kind]",
        "brand_new_field",
    ):
        assert name in req.dropped


def test_text_format_reasoning_and_limits_map_to_neutral():
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "input": "q",
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "out",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "reasoning": {"effort": "high", "summary": "auto"},
            "max_output_tokens": 99,
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
        }
    )
    assert (req.response_format.type, req.response_format.name, req.response_format.strict) == (
        "json_schema",
        "out",
        True,
    )
    assert (req.reasoning.effort, req.reasoning.summary) == ("high", "auto")
    assert (req.max_tokens, req.tool_choice.mode, req.tool_choice.name) == (99, "tool", "f")
    assert req.parallel_tool_calls is False


def test_wrong_input_item_shape_is_a_400_naming_the_field():
    with pytest.raises(BadRequest) as info:
        RESPONSES.decode_request({"model": "m", "input": [{"type": "function_call", "name": "f"}]})
    assert info.value.param == "input[0].call_id"


def test_stream_numbers_every_event_and_keeps_item_ids():
    req = RESPONSES.decode_request({"model": "m", "input": "q"})
    enc = ResponsesStreamEncoder(req)
    raw = (
        enc.encode(Start("x", "up", 1))
        + enc.encode(ReasoningDelta("th"))
        + enc.encode(ReasoningDelta(signature="s"))
    )
    raw += enc.encode(TextDelta("a")) + enc.encode(TextDelta("b"))
    raw += (
        enc.encode(ToolCallStart(0, "call_1", "f")) + enc.encode(Stop("tool_calls")) + enc.finish()
    )
    seq = events(raw)
    assert [e["sequence_number"] for e in seq] == list(range(len(seq)))
    final = seq[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["input_tokens"] > 0  # estimated
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "ab"
    assert final["output"][2]["arguments"] == "{}"
    assert final["output"][0]["encrypted_content"] == reasoning_token(ReasoningPart(signature="s"))
    added = {e["item"]["id"] for e in seq if e["type"] == "response.output_item.added"}
    assert added == {i["id"] for i in final["output"]}


def test_stream_error_before_anything_still_opens_with_created():
    req = RESPONSES.decode_request({"model": "m", "input": "q"})
    enc = ResponsesStreamEncoder(req)
    seq = events(enc.encode(ErrorEvent(429, "slow down")))
    assert [e["type"] for e in seq] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert seq[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    assert enc.finish() == b""


def test_length_stop_is_incomplete_with_reason():
    req = RESPONSES.decode_request({"model": "m", "input": "q"})
    enc = ResponsesStreamEncoder(req)
    seq = events(enc.encode(TextDelta("x")) + enc.encode(Stop("length")) + enc.finish())
    assert seq[-1]["type"] == "response.incomplete"
    assert seq[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_native_upstream_is_spared_gateway_items():
    assert (
        _foreign_item({"type": "reasoning", "id": "rs_apxabc", "encrypted_content": "apx1:e30"})
        is None
    )
    assert _foreign_item({"type": "message", "id": "msg_apx12", "role": "user"}) == {
        "type": "message",
        "role": "user",
    }
    kept = {"type": "reasoning", "id": "rs_123", "encrypted_content": "gAAA"}
    assert _foreign_item(kept) is kept


def test_neutral_tool_results_encode_as_function_call_output_for_a_native_upstream():
    req = CHAT.decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c", "content": "out"},
            ],
        }
    )
    body = RESPONSES.encode_request(req, "up", True)
    assert body["input"][1:] == [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "out"},
    ]
    assert body["stream"] is True and body["store"] is False
    assert isinstance(req.messages[2].parts[0], ToolResultPart)
    assert isinstance(req.messages[1].parts[0], ToolCallPart)


def test_input_items_get_ids_and_list_pages_refuse_unknown_cursors():
    items = normalize_input("hello")
    assert items[0]["id"].startswith("msg_") and items[0]["content"] == [
        {"type": "input_text", "text": "hello"}
    ]
    with pytest.raises(BadRequest):
        list_page(items, {"after": "nope"})
    with pytest.raises(BadRequest):
        list_page(items, {"limit": "0"})
    assert list_page(items, {})["data"] == items


def test_instructions_given_as_items_become_the_system_prompt():
    req = RESPONSES.decode_request(
        {
            "model": "m",
            "instructions": [
                {"role": "developer", "content": [{"type": "input_text", "text": "be terse"}]}
            ],
            "input": "q",
        }
    )
    assert [p.text for p in req.system] == ["be terse"]
    assert [(m.role, m.text()) for m in req.messages] == [("user", "q")]
