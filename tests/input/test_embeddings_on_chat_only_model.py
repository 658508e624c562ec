"""Issue 10 finding: /v1/embeddings on an Anthropic or Gemini model is a 400 saying the model
does not support embeddings (it was a 500)."""

from __future__ import annotations

from fuzz_support import BODIES
from gateway_support import MODELS
from regression_support import post_checked


async def test_embeddings_on_an_anthropic_model_is_400_model_does_not_support_embeddings(
    fuzz_gateway,
):
    for dialect in ("anthropic", "gemini"):
        body = {**BODIES["/v1/embeddings"], "model": MODELS[dialect]}
        status, answer, _ = await post_checked(fuzz_gateway, "/v1/embeddings", body)
        assert status == 400, dialect
        assert "does not support embeddings" in answer["error"]["message"]
