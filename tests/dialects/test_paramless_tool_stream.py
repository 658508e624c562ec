"""A streamed call of a tool without parameters gets `{}` as arguments for an OpenAI client."""

from __future__ import annotations

from dialect_helpers import ANTHROPIC, OPENAI

from apex_ai_proxy.dialects.neutral import ToolCallDelta, ToolCallEnd, ToolCallStart


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
