"""Issue 10 finding: an unexpected error on /v1/messages is a 500 in Anthropic's shape with the
request id and without the exception's text (it was OpenAI-shaped)."""

from __future__ import annotations

from typing import Any

from fuzz_support import BODIES
from gateway_support import MODELS
from regression_support import post_checked


async def test_unexpected_error_on_messages_is_500_in_anthropic_shape_with_request_id(
    fuzz_gateway, monkeypatch
):
    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fuzz_gateway.app.services.dispatcher, "run", broken)
    body = {**BODIES["/v1/messages"], "model": MODELS["anthropic"]}
    status, answer, headers = await post_checked(fuzz_gateway, "/v1/messages", body)
    assert status == 500
    assert answer["type"] == "error" and answer["error"]["type"] == "api_error"
    assert headers["x-request-id"] in answer["error"]["message"]
    assert "a bug" not in answer["error"]["message"]  # no exception text, no traceback
