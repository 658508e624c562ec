"""Property-based: an upstream answering JSON of any shape never makes the gateway answer 500.

A fake upstream answers with a valid answer of its dialect with one to three paths changed
(see fuzz_support.mutated), or with any JSON value at all; streamed, one event of a valid stream
is replaced so. The client must get its answer, a 502 in its own dialect, or (once a stream has
started) an error event, and never wait forever.
"""

from __future__ import annotations

import json

import pytest
from fuzz_support import assert_error_shape, mutated
from gateway_support import MODELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upstream_shapes import ANSWERS, STREAM_ENDS, STREAMS, sse

CLIENTS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
ERROR_MARKERS = {
    "/v1/chat/completions": b'data: {"error"',
    "/v1/messages": b"event: error",
    "/v1/responses": b"response.failed",
}
SAME_DIALECT = {
    "openai_chat": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "responses": "/v1/responses",
}
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _answer_bodies(dialect: str) -> st.SearchStrategy:
    return st.one_of(mutated(ANSWERS[dialect]), ANY_JSON)


@pytest.mark.parametrize("endpoint", CLIENTS)
@pytest.mark.parametrize("dialect", sorted(MODELS))
@FUZZ
@given(data=st.data())
async def test_upstream_answers_of_any_shape_never_give_a_500(shapes, endpoint, dialect, data):
    answer = data.draw(_answer_bodies(dialect), label="answer")
    shapes.upstream.whole(json.dumps(answer).encode())
    status, raw = await shapes.ask(endpoint, dialect, stream=False)
    assert status != 500, raw[:300]
    if not isinstance(answer, dict):
        assert status == 502, raw[:300]
    if status >= 400:
        assert_error_shape(endpoint, status, raw)


@pytest.mark.parametrize("endpoint", CLIENTS)
@pytest.mark.parametrize("dialect", sorted(MODELS))
@FUZZ
@given(data=st.data())
async def test_upstream_stream_events_of_any_shape_never_give_a_500(
    shapes, endpoint, dialect, data
):
    events = STREAMS[dialect]
    index = data.draw(st.integers(0, len(events) - 1), label="index")
    name, valid = events[index]
    replaced = data.draw(st.one_of(mutated(valid), ANY_JSON), label="event")
    frames = [sse(n, replaced if i == index else d) for i, (n, d) in enumerate(events)]
    shapes.upstream.stream(frames + [STREAM_ENDS.get(dialect, b"")])
    status, raw = await shapes.ask(endpoint, dialect, stream=True)
    assert status != 500, raw[:300]
    if status >= 400:
        assert_error_shape(endpoint, status, raw)
    translated = not endpoint.endswith(("messages", "responses", "completions")) or (
        {"anthropic": "/v1/messages", "responses": "/v1/responses"}.get(
            dialect, "/v1/chat/completions"
        )
        != endpoint
    )
    if status == 200 and translated and not isinstance(replaced, dict) and index > 0:
        assert ERROR_MARKERS[endpoint] in raw, raw[-300:]
