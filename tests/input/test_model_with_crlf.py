"""Issue 10 finding: a model name with CR/LF is a 400 and never reaches a header."""

from __future__ import annotations

from fuzz_support import BODIES
from regression_support import post_checked


async def test_model_with_crlf_is_400_and_never_reaches_a_header(fuzz_gateway):
    for endpoint in ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"):
        body = {**BODIES[endpoint], "model": "m\r\nx-injected: yes#openai_chat"}
        status, answer, headers = await post_checked(fuzz_gateway, endpoint, body)
        assert status == 400, endpoint
        assert "control characters" in answer["error"]["message"]
        assert "x-injected" not in {name.lower() for name in headers}
