"""Requests: what must survive translation between each pair of dialects."""

from __future__ import annotations

import pytest
from dialect_helpers import ANTHROPIC, GEMINI, OPENAI, translate_request

from apex_ai_proxy.dialects.anthropic import DEFAULT_MAX_TOKENS
from apex_ai_proxy.dialects.neutral import ReasoningPart, ToolCallPart, ToolResultPart
from apex_ai_proxy.errors import BadRequest

PNG = "iVBORw0KGgo="

OPENAI_TOOL_ROUND_TRIP = {
    "model": "gpt-x",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ],
}

ANTHROPIC_TOOL_ROUND_TRIP = {
    "model": "claude-x",
    "max_tokens": 2000,
    "system": [{"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two tools needed.", "signature": "sig-abc"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "boom",
                    "is_error": True,
                },
                {"type": "text", "text": "and?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ],
}


# --- OpenAI -> Anthropic -----------------------------------------------------------------------


def test_tool_result_ordering_openai_to_anthropic():
    body, _ = translate_request(OPENAI_TOOL_ROUND_TRIP, "openai_chat", "anthropic")
    assert body["system"] == "You are terse."
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    results = body["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in results[:2]] == ["call_1", "call_2"]


def test_zero_argument_tool_openai_to_anthropic():
    body, _ = translate_request(OPENAI_TOOL_ROUND_TRIP, "openai_chat", "anthropic")
    calls = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"]
    assert calls[1] == {"type": "tool_use", "id": "call_2", "name": "now", "input": {}}
    assert body["tools"][1]["input_schema"] == {"type": "object", "properties": {}}


def test_anthropic_default_max_tokens():
    body, _ = translate_request(OPENAI_TOOL_ROUND_TRIP, "openai_chat", "anthropic")
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_system_message_mid_conversation_openai_to_anthropic():
    source = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": "mode changed"},
            {"role": "user", "content": "c"},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["system"] == "rules"
    last = body["messages"][-1]
    assert last["role"] == "user"
    assert last["content"][0]["text"] == "<system-reminder>\nmode changed\n</system-reminder>"
    assert last["content"][1]["text"] == "c"
    # Back to OpenAI the mid-conversation system message stays in place.
    back, _ = translate_request(source, "openai_chat", "openai_chat")
    assert [m["role"] for m in back["messages"]] == [
        "system",
        "user",
        "assistant",
        "system",
        "user",
    ]


def test_empty_text_blocks_removed_for_anthropic():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "   "},
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "again"}],
            },
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        }
    ]


def test_image_data_url_becomes_base64_source():
    source = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    blocks = body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }
    gem, _ = translate_request(source, "openai_chat", "gemini")
    parts = gem["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2]["fileData"]["fileUri"] == "https://example.com/cat.jpg"


@pytest.mark.parametrize(
    ("openai_choice", "anthropic_choice"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "now"}}, {"type": "tool", "name": "now"}),
    ],
)
def test_tool_choice_forms(openai_choice, anthropic_choice):
    source = {**OPENAI_TOOL_ROUND_TRIP, "tool_choice": openai_choice}
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["tool_choice"] == anthropic_choice
    back, _ = translate_request(
        {**ANTHROPIC_TOOL_ROUND_TRIP, "tool_choice": anthropic_choice}, "anthropic", "openai_chat"
    )
    assert back["tool_choice"] == openai_choice


def test_parallel_tool_calls_maps_to_disable_parallel_tool_use():
    body, _ = translate_request(
        {**OPENAI_TOOL_ROUND_TRIP, "parallel_tool_calls": False}, "openai_chat", "anthropic"
    )
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    source = {
        **ANTHROPIC_TOOL_ROUND_TRIP,
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }
    back, _ = translate_request(source, "anthropic", "openai_chat")
    assert back["parallel_tool_calls"] is False
    assert back["tool_choice"] == "required"


def test_reasoning_effort_to_thinking_budget():
    body, req = translate_request(
        {**OPENAI_TOOL_ROUND_TRIP, "reasoning_effort": "high", "temperature": 0.3},
        "openai_chat",
        "anthropic",
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert body["max_tokens"] == 24576 + DEFAULT_MAX_TOKENS
    assert "temperature" not in body and "temperature" in req.dropped


def test_thinking_budget_clamped_below_client_max_tokens():
    body, _ = translate_request(
        {**OPENAI_TOOL_ROUND_TRIP, "reasoning_effort": "high", "max_tokens": 4000},
        "openai_chat",
        "anthropic",
    )
    assert body["max_tokens"] == 4000
    assert body["thinking"]["budget_tokens"] == 3999
    body, req = translate_request(
        {**OPENAI_TOOL_ROUND_TRIP, "reasoning_effort": "low", "max_tokens": 500},
        "openai_chat",
        "anthropic",
    )
    assert "thinking" not in body and "reasoning" in req.dropped


def test_forced_tool_choice_with_thinking_becomes_auto():
    source = {**OPENAI_TOOL_ROUND_TRIP, "reasoning_effort": "low", "tool_choice": "required"}
    body, req = translate_request(source, "openai_chat", "anthropic")
    assert body["tool_choice"] == {"type": "auto"}
    assert "tool_choice" in req.dropped


def test_unknown_fields_pass_to_same_dialect_only():
    source = {**OPENAI_TOOL_ROUND_TRIP, "logprobs": True, "service_tier": "flex"}
    same, req = translate_request(source, "openai_chat", "openai_chat")
    assert same["logprobs"] is True and same["service_tier"] == "flex"
    assert req.dropped == []
    other, req = translate_request(source, "openai_chat", "anthropic")
    assert "logprobs" not in other
    assert {"logprobs", "service_tier"} <= set(req.dropped)


def test_response_format_json_schema_to_anthropic_instruction_and_gemini_schema():
    schema = {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "additionalProperties": False,
    }
    source = {
        **OPENAI_TOOL_ROUND_TRIP,
        "response_format": {"type": "json_schema", "json_schema": {"name": "X", "schema": schema}},
    }
    anth, _ = translate_request(source, "openai_chat", "anthropic")
    assert anth["system"].startswith("You are terse.\n\nRespond with a single valid JSON object")
    assert '"x"' in anth["system"]
    gem, _ = translate_request(source, "openai_chat", "gemini")
    assert gem["generationConfig"]["responseMimeType"] == "application/json"
    assert gem["generationConfig"]["responseSchema"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
    }


def test_sampling_and_limits_to_gemini():
    source = {
        **OPENAI_TOOL_ROUND_TRIP,
        "temperature": 1.5,
        "top_p": 0.9,
        "max_completion_tokens": 99,
        "stop": "END",
        "seed": 7,
    }
    body, _ = translate_request(source, "openai_chat", "gemini")
    assert body["generationConfig"] == {
        "temperature": 1.5,
        "topP": 0.9,
        "maxOutputTokens": 99,
        "seed": 7,
        "stopSequences": ["END"],
    }
    assert "model" not in body


def test_tool_name_mapping_round_trip():
    source = {
        "model": "m",
        "messages": [{"role": "user", "content": "go"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "fs.read/file",
                    "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "fs.read/file"}},
    }
    body, req = translate_request(source, "openai_chat", "anthropic")
    alias = body["tools"][0]["name"]
    assert alias != "fs.read/file" and body["tool_choice"]["name"] == alias
    assert req.tool_names.to_client(alias) == "fs.read/file"
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": alias, "input": {"p": "/a"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    out = OPENAI.encode_response(ANTHROPIC.decode_response(response), req)
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "fs.read/file"


def test_invalid_request_names_the_field():
    with pytest.raises(BadRequest) as err:
        OPENAI.decode_request({"model": "m", "messages": [{"role": "user", "content": 5}]})
    assert err.value.param == "messages[0].content"
    with pytest.raises(BadRequest) as err:
        ANTHROPIC.decode_request({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})
    assert err.value.param == "messages[0].role"
    with pytest.raises(BadRequest) as err:
        OPENAI.decode_request({"messages": []})
    assert err.value.param == "model"


# --- Anthropic -> OpenAI ---------------------------------------------------------------------


def test_tool_result_ordering_anthropic_to_openai():
    body, _ = translate_request(ANTHROPIC_TOOL_ROUND_TRIP, "anthropic", "openai_chat")
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assistant = body["messages"][2]
    assert assistant["content"] == "Checking."
    assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == [
        '{"city":"Paris"}',
        "{}",
    ]
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert body["messages"][4]["content"] == "Error: boom"


def test_thinking_not_sent_to_foreign_openai_upstream():
    body, req = translate_request(ANTHROPIC_TOOL_ROUND_TRIP, "anthropic", "openai_chat")
    assert "reasoning_content" not in body["messages"][2]
    assert "messages[].reasoning" in req.dropped


def test_thinking_signature_round_trip_through_openai_client():
    """An OpenAI client sends back what it got from a Claude upstream: the block returns intact."""
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "Two tools needed.",
                "reasoning_signature": "sig-abc",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "now", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "12:00"},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Two tools needed.",
        "signature": "sig-abc",
    }


def test_redacted_thinking_round_trip_through_reasoning_details():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "t1", "signature": "s1"},
                    {"type": "reasoning.encrypted", "data": "REDACTED"},
                ],
            },
            {"role": "user", "content": "more"},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "t1", "signature": "s1"},
        {"type": "redacted_thinking", "data": "REDACTED"},
    ]


def test_system_message_mid_conversation_anthropic_messages_list():
    """Coding agents put a `system` role inside Anthropic `messages`."""
    source = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "system", "content": "first"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": [{"type": "text", "text": "later"}]},
            {"role": "user", "content": "c"},
        ],
    }
    req = ANTHROPIC.decode_request(source)
    assert req.system_text() == "first"
    assert [m.role for m in req.messages] == ["user", "assistant", "system", "user"]
    anth = ANTHROPIC.encode_request(req, "claude", False)
    assert all(m["role"] != "system" for m in anth["messages"])
    assert anth["messages"][-1]["content"][0]["text"].startswith("<system-reminder>")
    oai = OPENAI.encode_request(req, "gpt", False)
    assert [m["role"] for m in oai["messages"]] == ["system", "user", "assistant", "system", "user"]


def test_anthropic_thinking_budget_to_effort():
    source = {**ANTHROPIC_TOOL_ROUND_TRIP, "thinking": {"type": "enabled", "budget_tokens": 10000}}
    body, _ = translate_request(source, "anthropic", "openai_chat")
    assert body["reasoning_effort"] == "medium"
    assert body["max_completion_tokens"] == 2000


def test_tool_result_images_follow_tool_messages_in_openai():
    source = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "shot"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "text", "text": "here"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    }
                ],
            },
        ],
    }
    body, _ = translate_request(source, "anthropic", "openai_chat")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]
    assert body["messages"][2]["content"] == "here"
    assert body["messages"][3]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"


def test_consecutive_same_role_messages_merged_for_anthropic():
    source = {
        "model": "m",
        "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


# --- to and from Gemini ----------------------------------------------------------------------


def test_gemini_function_response_carries_the_name():
    body, _ = translate_request(ANTHROPIC_TOOL_ROUND_TRIP, "anthropic", "gemini")
    turns = body["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    responses = [p["functionResponse"] for p in turns[2]["parts"][:2]]
    assert responses == [
        {"name": "get_weather", "response": {"result": "sunny"}},
        {"name": "now", "response": {"error": "boom"}},
    ]
    assert turns[2]["parts"][2] == {"text": "and?"}
    assert body["systemInstruction"] == {"parts": [{"text": "Be careful."}]}


def test_zero_argument_tool_to_gemini_has_no_parameters():
    body, _ = translate_request(OPENAI_TOOL_ROUND_TRIP, "openai_chat", "gemini")
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[1] == {"name": "now"}
    assert declarations[0]["parameters"]["required"] == ["city"]


def test_unsigned_function_calls_get_the_placeholder_signature_for_gemini():
    body, _ = translate_request(OPENAI_TOOL_ROUND_TRIP, "openai_chat", "gemini")
    calls = body["contents"][1]["parts"]
    assert calls[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]


def test_gemini_signature_round_trip_through_openai_extra_content():
    source = {
        "model": "gemini-x",
        "contents": [
            {"role": "user", "parts": [{"text": "time?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": "gsig"}
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "now", "response": {"result": "12:00"}}}],
            },
        ],
    }
    req = GEMINI.decode_request(source)
    call = req.messages[1].parts[0]
    result = req.messages[2].parts[0]
    assert isinstance(call, ToolCallPart) and isinstance(result, ToolResultPart)
    assert result.tool_call_id == call.id and result.text() == "12:00"
    oai = OPENAI.encode_request(req, "gpt", False)
    sent = oai["messages"][1]["tool_calls"][0]
    assert sent["extra_content"] == {"google": {"thought_signature": "gsig"}}
    assert oai["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "12:00"}
    # An OpenAI client echoing the call back brings the signature home to Gemini.
    back = GEMINI.encode_request(OPENAI.decode_request(oai), "gemini-x", False)
    assert back["contents"][1]["parts"][0]["thoughtSignature"] == "gsig"


def test_gemini_parallel_calls_paired_by_name_in_order():
    source = {
        "model": "gemini-x",
        "contents": [
            {"role": "user", "parts": [{"text": "two cities"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "A"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "B"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"result": "rain"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"result": "sun"}}},
                ],
            },
        ],
        "generationConfig": {
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
            "maxOutputTokens": 5000,
        },
    }
    body, req = translate_request(source, "gemini", "anthropic")
    uses = body["messages"][1]["content"]
    results = body["messages"][2]["content"]
    assert [u["input"]["city"] for u in uses] == ["A", "B"]
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert len({u["id"] for u in uses}) == 2
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_gemini_reads_snake_case_and_file_data():
    source = {
        "model": "models/gemini-x",
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "image/jpeg", "data": PNG}},
                    {"file_data": {"mime_type": "application/pdf", "file_uri": "gs://b/x.pdf"}},
                ],
            }
        ],
    }
    body, _ = translate_request(source, "gemini", "anthropic")
    assert body["system"] == "sys"
    blocks = body["messages"][0]["content"]
    assert blocks[0]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": PNG}
    assert blocks[1] == {"type": "document", "source": {"type": "url", "url": "gs://b/x.pdf"}}


def test_reasoning_to_gemini_thinking_config():
    body, _ = translate_request(
        {**ANTHROPIC_TOOL_ROUND_TRIP, "thinking": {"type": "enabled", "budget_tokens": 3000}},
        "anthropic",
        "gemini",
    )
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 3000,
        "includeThoughts": True,
    }
    body, _ = translate_request(
        {**OPENAI_TOOL_ROUND_TRIP, "reasoning_effort": "none"}, "openai_chat", "gemini"
    )
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_anthropic_reasoning_parts_kept_in_neutral():
    req = ANTHROPIC.decode_request(ANTHROPIC_TOOL_ROUND_TRIP)
    first = req.messages[1].parts[0]
    assert isinstance(first, ReasoningPart) and first.signature == "sig-abc"
    again = ANTHROPIC.encode_request(req, "claude", False)
    assert again["messages"][1]["content"] == ANTHROPIC_TOOL_ROUND_TRIP["messages"][1]["content"]
    assert again["system"] == ANTHROPIC_TOOL_ROUND_TRIP["system"]
