"""A tool result that is JSON reaches Gemini as an object, not a string."""

from __future__ import annotations

from dialect_helpers import translate_request


def test_json_tool_result_sent_to_gemini_as_object():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": '{"temp": 21}'},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "gemini")
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "f",
        "response": {"temp": 21},
    }
