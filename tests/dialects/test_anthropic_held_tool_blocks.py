"""Interleaved tool calls streamed to an Anthropic client: one content block open at a time,
the other calls and text held in arrival order."""

from __future__ import annotations

from dialect_helpers import ANTHROPIC, OPENAI, events

from apex_ai_proxy.dialects.neutral import (
    Stop,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)


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
