"""What the pool reads from a client's request is hostile input: sessions and token estimates."""

from __future__ import annotations

import pytest

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.affinity import MAX_SESSION_CHARS, Affinity
from apex_ai_proxy.dispatch.pool import MAX_OUTPUT_ESTIMATE, estimate_tokens


@pytest.mark.parametrize(
    "body",
    [
        {"prompt_cache_key": {"not": "a string"}},
        {"prompt_cache_key": ""},
        {"previous_response_id": 12},
        {"metadata": "user"},
        {"metadata": {"user_id": ["x"]}},
        {"metadata": None},
    ],
)
def test_sessions_that_are_not_strings_pin_nothing(body):
    assert Affinity(60).session_of({}, body) is None


def test_session_names_are_bounded_and_kept_apart_by_source():
    affinity = Affinity(60, header="X-Conversation")
    long = "c" * 100_000
    assert len(affinity.session_of({}, {"prompt_cache_key": long}) or "") <= MAX_SESSION_CHARS
    by_header = affinity.session_of({"x-conversation": "same"}, {})
    by_body = affinity.session_of({}, {"prompt_cache_key": "same"})
    by_user = affinity.session_of({}, {"metadata": {"user_id": "same"}})
    assert len({by_header, by_body, by_user}) == 3
    # The configured header comes first, then the agents' session headers, then the body.
    headers = {"x-conversation": "mine", "x-claude-code-session-id": "cc"}
    assert affinity.session_of(headers, {"prompt_cache_key": "k"}) == "h:mine"
    assert Affinity(60).session_of(headers, {"prompt_cache_key": "k"}) == "h:cc"


def test_pins_expire_and_stay_bounded(monkeypatch):
    from apex_ai_proxy.dispatch import affinity as module

    monkeypatch.setattr(module, "MAX_PINS", 3)
    pins = Affinity(0.0)
    pins.pin("s", "k#0|m")
    assert pins.pinned("s") is None  # a TTL of 0 pins for no time at all
    pins = Affinity(60)
    for i in range(5):
        pins.pin(f"s{i}", f"k#{i}|m")
    assert pins.pinned("s0") is None and pins.pinned("s4") == "k#4|m"


@pytest.mark.parametrize("asked", [None, True, -5, 0, "100", 1.5, 10**30, {"n": 1}])
def test_token_estimates_stay_bounded_whatever_max_tokens_says(asked):
    ctx = RequestContext.new("/v1/chat/completions", "openai_chat")
    ctx.bytes_in = 4000
    estimate = estimate_tokens(ctx, {"max_tokens": asked})
    assert 1000 < estimate <= 1000 + MAX_OUTPUT_ESTIMATE
