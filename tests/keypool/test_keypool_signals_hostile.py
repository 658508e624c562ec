"""Hostile upstream answers: the signal parsers never raise and never hold a key out longer
than the horizon, whatever the status, headers and body.

The fuzz calls the parser behind `read_signal`'s last-resort `except`: that guard would hide a
crash, and a crash is what these tests look for."""

from __future__ import annotations

import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from apex_ai_proxy.keypool import signals
from apex_ai_proxy.keypool.limits import next_daily_reset
from apex_ai_proxy.keypool.signals import (
    MAX_HORIZON_S,
    Verdict,
    parse_count,
    parse_duration,
    parse_retry_after,
    parse_rfc3339,
)

NOW = 1_764_637_200.0

HEADER_NAMES = (
    [
        f"x-ratelimit-{part}-{kind}"
        for part in ("limit", "remaining", "reset")
        for kind in ("requests", "tokens")
    ]
    + [
        f"anthropic-ratelimit-{kind}-{part}"
        for kind in ("requests", "tokens", "input-tokens", "output-tokens")
        for part in ("limit", "remaining", "reset")
    ]
    + ["retry-after", "Retry-After", "X-RATELIMIT-RESET-TOKENS"]
)

header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "0",
            "-1",
            "1e400",
            "nan",
            "inf",
            "6m0s",
            "9999999999h",
            "0.0000001ms",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+00:00",
            "2026-12-02T01:00:00",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "99999999999999999",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
header_lists = st.lists(
    st.tuples(st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=30)), header_values),
    max_size=12,
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
details = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "@type": st.sampled_from(
                    [
                        "type.googleapis.com/google.rpc.QuotaFailure",
                        "type.googleapis.com/google.rpc.RetryInfo",
                        5,
                        None,
                    ]
                ),
                "violations": st.one_of(
                    json_values,
                    st.lists(st.fixed_dictionaries({"quotaId": st.one_of(json_values, st.text())})),
                ),
                "retryDelay": st.one_of(json_values, header_values),
            }
        ),
    ),
    max_size=4,
)
gemini_bodies = st.builds(
    lambda d, wrap: orjson.dumps(
        [{"error": {"details": d}}] if wrap else {"error": {"details": d}}
    ),
    details,
    st.booleans(),
)
bodies = st.one_of(st.none(), st.binary(max_size=300), gemini_bodies, json_values.map(orjson.dumps))
statuses = st.one_of(st.none(), st.integers(min_value=-5, max_value=1000))


def daily(now: float) -> float:
    return next_daily_reset(now, "America/Los_Angeles")


@settings(max_examples=400, deadline=None)
@given(statuses, header_lists, bodies)
def test_any_answer_is_classified_without_raising(status, headers, body):
    signal = signals._read(status, headers, body, NOW, daily)
    assert isinstance(signal.verdict, Verdict)
    if signal.until is not None:
        assert math.isfinite(signal.until)
        assert NOW <= signal.until <= NOW + MAX_HORIZON_S
    for window in (signal.requests, signal.tokens):
        if window is not None and window.reset_at is not None:
            assert NOW <= window.reset_at <= NOW + MAX_HORIZON_S
    if status is None or status >= 500:
        assert signal.verdict is Verdict.UPSTREAM_FAULT and signal.until is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_value_parsers_read_or_refuse_any_text(text):
    duration = parse_duration(text)
    assert duration is None or (math.isfinite(duration) and duration >= 0)
    count = parse_count(text)
    assert count is None or 0 <= count < 10**15
    when = parse_rfc3339(text)
    assert when is None or math.isfinite(when)
    after = parse_retry_after(text, NOW)
    assert after is None or (math.isfinite(after) and after >= 0)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(), st.integers(), st.lists(st.integers())), st.integers())
def test_headers_of_the_wrong_shape_are_skipped(junk, status):
    # Headers as bytes pairs, odd tuples, non-strings: whatever a caller hands over.
    headers = [(b"retry-after", b"7"), ("x", 1), (1, "y"), ("a",), junk]
    signal = signals._read(429, headers, None, NOW, daily)
    assert signal.until == NOW + 7
    assert read_anything(status, junk)


def read_anything(status: int, junk: object) -> bool:
    signal = signals.read_signal(status, junk, junk, NOW, daily)  # type: ignore[arg-type]
    return isinstance(signal.verdict, Verdict)
