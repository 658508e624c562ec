"""The token estimate counts system and message text, tool definitions and images."""

from __future__ import annotations

from apex_ai_proxy.dialects import estimate_tokens
from apex_ai_proxy.dialects.neutral import ImagePart, Message, NeutralRequest, TextPart, ToolSpec


def test_estimate_tokens_counts_text_tools_and_images():
    req = NeutralRequest(model="m", source_dialect="openai_chat")
    assert estimate_tokens(req) == 0
    req.system = [TextPart("x" * 40)]
    req.messages = [Message("user", [TextPart("y" * 40), ImagePart("image/png", "AAAA")])]
    req.tools = [ToolSpec("t" * 4, "d" * 4, {"type": "object"})]
    tool_chars = 8 + len('{"type":"object"}')
    assert estimate_tokens(req) == -(-(80 + tool_chars) // 4) + 4 + 1600
