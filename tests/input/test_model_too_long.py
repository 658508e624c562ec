"""Issue 10 finding: a model name longer than 256 characters is a 400 on `model`."""

from __future__ import annotations

from fuzz_support import BODIES
from regression_support import post_checked


async def test_model_longer_than_256_characters_is_400(fuzz_gateway):
    body = {**BODIES["/v1/chat/completions"], "model": "m" * 257}
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400 and answer["error"]["param"] == "model"
