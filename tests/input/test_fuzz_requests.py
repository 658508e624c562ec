"""Property-based: a wrongly typed or odd field in any request schema never gives a 500.

Each example takes the valid body of an endpoint, sets one to three JSON paths to another value
(another JSON type, control characters, huge numbers, deep nesting, empty objects) or removes
them, and sends it through the real gateway to a fake upstream of some dialect (so every client
dialect is translated to every upstream dialect). The answer must not be a 500, and an error
must come in the endpoint's own dialect with a message.
"""

from __future__ import annotations

import json

import pytest
from fuzz_support import BODIES, assert_error_shape, mutated
from gateway_support import MODELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHAT_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
)


async def _check(fuzz_gateway, endpoint: str, body: dict) -> None:
    status, raw, _ = await fuzz_gateway.post(endpoint, json.dumps(body).encode())
    assert status != 500, (body, raw[:500])
    if status >= 400:
        assert_error_shape(endpoint, status, raw)


@pytest.mark.parametrize("endpoint", CHAT_ENDPOINTS)
@pytest.mark.parametrize("upstream", sorted(MODELS))
@FUZZ
@given(data=st.data())
async def test_wrongly_typed_request_fields_never_give_a_500(
    fuzz_gateway, endpoint, upstream, data
):
    seed = {**BODIES[endpoint], "model": MODELS[upstream]}
    body = data.draw(mutated(seed), label="body")
    await _check(fuzz_gateway, endpoint, body)


@pytest.mark.parametrize("endpoint", CHAT_ENDPOINTS)
@pytest.mark.parametrize("upstream", sorted(MODELS))
@settings(FUZZ, max_examples=15)
@given(data=st.data())
async def test_wrongly_typed_streamed_request_fields_never_give_a_500(
    fuzz_gateway, endpoint, upstream, data
):
    if endpoint.endswith("count_tokens"):
        pytest.skip("count_tokens does not stream")
    seed = {**BODIES[endpoint], "model": MODELS[upstream], "stream": True}
    body = data.draw(mutated(seed), label="body")
    await _check(fuzz_gateway, endpoint, body)


@pytest.mark.parametrize("upstream", sorted(MODELS))
@settings(FUZZ, max_examples=30)
@given(data=st.data())
async def test_wrongly_typed_embeddings_fields_never_give_a_500(fuzz_gateway, upstream, data):
    seed = {**BODIES["/v1/embeddings"], "model": MODELS[upstream]}
    body = data.draw(mutated(seed), label="body")
    await _check(fuzz_gateway, "/v1/embeddings", body)


@pytest.mark.parametrize("endpoint", [*CHAT_ENDPOINTS, "/v1/embeddings"])
@settings(FUZZ, max_examples=25)
@given(model=st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=40))
async def test_odd_model_names_never_give_a_500(fuzz_gateway, endpoint, model):
    body = {**BODIES[endpoint], "model": model}
    status, raw, headers = await fuzz_gateway.post(endpoint, json.dumps(body).encode())
    assert status != 500, (model, raw[:300])
    assert not any("\r" in v or "\n" in v for v in headers.values())
    if status >= 400:
        assert_error_shape(endpoint, status, raw)
