"""Issue 10 finding: a stored /v1/responses request whose input item type is a list is a 400 on
`input[0].type`."""

from __future__ import annotations

from fuzz_support import BODIES
from gateway_support import MODELS
from regression_support import post_checked


async def test_stored_response_with_a_list_as_item_type_is_400(fuzz_gateway):
    body = {**BODIES["/v1/responses"], "model": MODELS["responses"], "store": True}
    body["input"] = [{"type": ["message"], "role": "user", "content": "hi"}]
    status, answer, _ = await post_checked(fuzz_gateway, "/v1/responses", body)
    assert status == 400
    assert answer["error"]["param"] == "input[0].type"
