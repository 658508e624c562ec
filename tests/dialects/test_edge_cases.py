"""One named regression test per protocol edge case not covered by the pair conformance files."""

from __future__ import annotations

from dialect_helpers import ANTHROPIC, GEMINI, OPENAI, events, translate_request

from apex_ai_proxy.dialects import dialect_names, estimate_tokens, get_dialect
from apex_ai_proxy.dialects.neutral import (
    ImagePart,
    Message,
    NeutralRequest,
    Stop,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
)
from apex_ai_proxy.dialects.toolnames import GEMINI_NAME, OPENAI_NAME, ToolNames


def test_registry_returns_one_shared_dialect_per_name():
    assert get_dialect("anthropic") is ANTHROPIC
    assert {"openai_chat", "anthropic", "gemini"} <= set(dialect_names())


def test_prefill_trailing_whitespace_stripped_for_anthropic():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "list"},
            {"role": "assistant", "content": "Sure:\n  "},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure:"}],
    }


def test_tool_choice_without_tools_not_sent():
    source = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}
    assert "tool_choice" not in translate_request(source, "openai_chat", "anthropic")[0]
    back = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tool_choice": {"type": "none"},
    }
    assert "tool_choice" not in translate_request(back, "anthropic", "openai_chat")[0]


def test_gemini_tool_names_must_start_with_a_letter():
    names = ToolNames()
    assert names.to_upstream("9lives", OPENAI_NAME) == "9lives"
    alias = names.to_upstream("9lives", GEMINI_NAME)
    assert GEMINI_NAME.match(alias) and names.to_client(alias) == "9lives"
    assert names.to_upstream("9lives", GEMINI_NAME) == alias  # deterministic across attempts


def test_tool_name_aliases_never_collide():
    names = ToolNames()
    assert names.to_upstream("a.b", OPENAI_NAME) != names.to_upstream("a/b", OPENAI_NAME)
    long = "x" * 80
    alias = names.to_upstream(long, OPENAI_NAME)
    assert len(alias) <= 64 and names.to_client(alias) == long


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


def test_empty_tool_result_for_anthropic_has_no_empty_text():
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
            {"role": "tool", "tool_call_id": "c", "content": ""},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "c"}]


def test_zero_argument_tool_stream_gets_braces_for_openai_client():
    req = ANTHROPIC.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    )
    encoder = OPENAI.stream_encoder(req)
    out = encoder.encode(ToolCallStart(0, "toolu_1", "now")) + encoder.encode(ToolCallEnd(0))
    assert b'"arguments":"{}"' in out
    encoder = OPENAI.stream_encoder(req)
    out = (
        encoder.encode(ToolCallStart(0, "t", "f"))
        + encoder.encode(ToolCallDelta(0, '{"a":1}'))
        + encoder.encode(ToolCallEnd(0))
    )
    assert out.count(b'"arguments"') == 2 and b'"arguments":"{}"' not in out


def _content_events(raw: bytes) -> list[tuple[str, object]]:
    """(event name, tool id | delta text) for each content_block_start / _delta / _stop."""
    out: list[tuple[str, object]] = []
    for name, data in events(raw):
        if name == "content_block_start":
            out.append(("start", data["content_block"].get("id") or data["content_block"]["type"]))
        elif name == "content_block_delta":
            delta = data["delta"]
            out.append(("delta", delta.get("partial_json", delta.get("text"))))
        elif name == "content_block_stop":
            out.append(("stop", data["index"]))
    return out


def test_anthropic_stream_holds_other_calls_and_text_while_a_tool_block_streams():
    """The first call streams live; a call interleaved with it and text after it are held in
    arrival order until its block closes, then follow as their own blocks, every byte kept."""
    req = OPENAI.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    encoder = ANTHROPIC.stream_encoder(req)
    live = encoder.encode(ToolCallStart(0, "call_a", "get_weather"))
    live += encoder.encode(ToolCallDelta(0, '{"city":'))
    assert _content_events(live) == [("start", "call_a"), ("delta", '{"city":')]
    held = encoder.encode(ToolCallStart(1, "call_b", "get_weather"))
    held += encoder.encode(ToolCallDelta(1, '{"city":"Rome"}'))
    held += encoder.encode(TextDelta("Checking."))
    assert held == b""  # no block may open while call_a's is
    late = encoder.encode(ToolCallDelta(0, '"Paris"}'))
    assert _content_events(late) == [("delta", '"Paris"}')]  # still call_a's open block
    rest = encoder.encode(ToolCallEnd(0)) + encoder.encode(ToolCallEnd(1))
    rest += encoder.encode(Stop("tool_calls")) + encoder.finish()
    assert _content_events(rest) == [
        ("stop", 0),
        ("start", "call_b"),
        ("delta", '{"city":"Rome"}'),
        ("stop", 1),
        ("start", "text"),
        ("delta", "Checking."),
        ("stop", 2),
    ]


def test_anthropic_stream_sends_the_next_held_call_live_when_the_open_one_ends():
    """Upstreams that end each call (Anthropic, Responses, Gemini): when the live call ends, a
    held call that has ended goes out whole, the first one still running goes live."""
    req = OPENAI.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    encoder = ANTHROPIC.stream_encoder(req)
    out = encoder.encode(ToolCallStart(0, "call_a", "now"))
    out += encoder.encode(ToolCallStart(1, "call_b", "get_weather"))
    out += encoder.encode(ToolCallDelta(1, '{"ci'))
    out += encoder.encode(ToolCallStart(2, "call_c", "get_weather"))
    out += encoder.encode(ToolCallDelta(2, '{"city":"Rome"}'))
    out += encoder.encode(ToolCallEnd(2))
    assert _content_events(out) == [("start", "call_a")]
    out = encoder.encode(ToolCallDelta(1, 'ty":'))
    out += encoder.encode(ToolCallEnd(0))
    assert _content_events(out) == [("stop", 0), ("start", "call_b"), ("delta", '{"city":')]
    out = encoder.encode(ToolCallDelta(1, '"Paris"}'))
    assert _content_events(out) == [("delta", '"Paris"}')]
    out = encoder.encode(ToolCallEnd(1))
    assert _content_events(out) == [
        ("stop", 1),
        ("start", "call_c"),
        ("delta", '{"city":"Rome"}'),
        ("stop", 2),
    ]
    assert _content_events(encoder.encode(Stop("tool_calls")) + encoder.finish()) == []


def test_gemini_non_function_tools_only_reach_gemini():
    source = {
        "model": "gemini-x",
        "contents": [{"role": "user", "parts": [{"text": "search"}]}],
        "tools": [{"googleSearch": {}}],
    }
    req = GEMINI.decode_request(source)
    assert GEMINI.encode_request(req, "g", False)["tools"] == [{"googleSearch": {}}]
    assert "tools" not in ANTHROPIC.encode_request(req, "c", False)
    assert "tools[googleSearch]" in req.dropped


def test_anthropic_server_tools_dropped_for_other_dialects():
    source = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    body, req = translate_request(source, "anthropic", "openai_chat")
    assert "tools" not in body and "tools[web_search]" in req.dropped


def test_estimate_tokens_counts_text_tools_and_images():
    req = NeutralRequest(model="m", source_dialect="openai_chat")
    assert estimate_tokens(req) == 0
    req.system = [TextPart("x" * 40)]
    req.messages = [Message("user", [TextPart("y" * 40), ImagePart("image/png", "AAAA")])]
    req.tools = [ToolSpec("t" * 4, "d" * 4, {"type": "object"})]
    tool_chars = 8 + len('{"type":"object"}')
    assert estimate_tokens(req) == -(-(80 + tool_chars) // 4) + 4 + 1600
