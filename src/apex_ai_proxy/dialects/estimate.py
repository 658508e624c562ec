"""A prompt-size estimate for upstreams that cannot count tokens (no tokenizer on the hot path).

Rule, chosen to over- rather than under-estimate English and code:
- text (system, messages, tool results, reasoning, tool-call arguments): ceil(characters / 4);
- tool definitions: their name, description and JSON schema as text, same rule;
- each message: +4 tokens of framing; each image or file: +1600 (Anthropic's upper bound for
  an image that is not downscaled, ~1.15 megapixels / 750).
"""

from __future__ import annotations

from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.dialects.neutral import (
    FilePart,
    ImagePart,
    NeutralRequest,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1600


def estimate_tokens(req: NeutralRequest) -> int:
    chars = sum(len(p.text) for p in req.system)
    extra = 0
    for message in req.messages:
        extra += MESSAGE_OVERHEAD
        for part in message.parts:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart | FilePart):
                extra += IMAGE_TOKENS
            elif isinstance(part, ToolCallPart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ToolResultPart):
                for inner in part.content:
                    if isinstance(inner, TextPart):
                        chars += len(inner.text)
                    else:
                        extra += IMAGE_TOKENS
            elif isinstance(part, ReasoningPart):
                chars += len(part.text)
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description or "")
        if tool.parameters:
            chars += len(dumps(tool.parameters))
    return -(-chars // CHARS_PER_TOKEN) + extra
