"""What an upstream answer says about a key × model: learned windows and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import orjson
import pytest

from apex_ai_proxy.keypool.limits import next_daily_reset
from apex_ai_proxy.keypool.signals import (
    MAX_HORIZON_S,
    Verdict,
    parse_duration,
    parse_retry_after,
    read_signal,
    says_nothing,
)
from apex_ai_proxy.keypool.state import OK_STATUS, KeyState, Policy, transition

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC).timestamp()  # 17:00 the day before in Los Angeles
LA = "America/Los_Angeles"


def utc_reset(now: float) -> float:
    return next_daily_reset(now, "UTC")


def la_reset(now: float) -> float:
    return next_daily_reset(now, LA)


def gemini_429(quota_id: str, retry_delay: str = "39s") -> bytes:
    return orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests",
                                "quotaId": quota_id,
                                "quotaDimensions": {"location": "global", "model": "g-flash"},
                                "quotaValue": "250",
                            }
                        ],
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.Help",
                        "links": [{"description": "quotas", "url": "https://ai.google.dev"}],
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": retry_delay,
                    },
                ],
            }
        }
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("36.429760048s", 36.429760048),
        ("0s", 0.0),
        ("2m", 120.0),
    ],
)
def test_openai_reset_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "ms", "1x", "-1s", "1e9s", "1.s", "6m0", "∞s", "1s1s"])
def test_unreadable_durations_are_ignored(text):
    assert parse_duration(text) is None


def test_openai_headers_teach_both_windows_and_a_spent_one_rests_the_key():
    headers = {
        "X-RateLimit-Limit-Requests": "60",
        "X-RateLimit-Remaining-Requests": "0",
        "X-RateLimit-Reset-Requests": "6m0s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "20ms",
    }
    signal = read_signal(200, headers, b"{}", NOW, utc_reset)
    assert signal.requests.limit == 60 and signal.requests.remaining == 0
    assert signal.tokens.remaining == 149984
    assert signal.tokens.reset_at == pytest.approx(NOW + 0.02)
    # The answer succeeded, but it was the window's last request: out until the window resets.
    assert signal.verdict is Verdict.RATE_LIMITED
    assert signal.until == pytest.approx(NOW + 360)


def test_anthropic_headers_use_the_tightest_token_window_and_rfc3339_resets():
    reset = "2026-12-02T01:00:30Z"
    headers = [
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-requests-reset", reset),
        ("anthropic-ratelimit-input-tokens-limit", "40000"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
        ("anthropic-ratelimit-input-tokens-reset", "2026-12-02T01:00:45+00:00"),
        ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ("anthropic-ratelimit-output-tokens-remaining", "7000"),
        ("anthropic-ratelimit-output-tokens-reset", reset),
        ("retry-after", "45"),
    ]
    signal = read_signal(429, headers, b'{"type":"error"}', NOW, utc_reset)
    assert signal.verdict is Verdict.RATE_LIMITED
    assert signal.requests.reset_at == NOW + 30
    assert signal.tokens.remaining == 0 and signal.tokens.limit == 40000
    assert signal.until == pytest.approx(NOW + 45)


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("30", NOW) == 30
    date = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(90)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    signal = read_signal(429, {"Retry-After": date}, b"", NOW, utc_reset)
    assert signal.until == pytest.approx(NOW + 90)


def test_an_absurd_retry_after_is_clamped_to_the_horizon():
    signal = read_signal(429, {"retry-after": "999999999999"}, b"", NOW, utc_reset)
    assert signal.until == NOW + MAX_HORIZON_S


def test_gemini_per_day_quota_cools_the_key_until_reset():
    """A PerDay violation means the key × model is spent until Los Angeles midnight, not for
    the 39 s RetryInfo suggests."""
    body = gemini_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    signal = read_signal(429, {"retry-after": "39"}, body, NOW, la_reset)
    midnight_la = datetime(2026, 12, 2, 8, 0, tzinfo=UTC).timestamp()
    assert signal.verdict is Verdict.QUOTA_EXHAUSTED
    assert signal.until == midnight_la

    status = transition(OK_STATUS, signal, NOW)
    assert status.state is KeyState.QUOTA_EXHAUSTED and status.until == midnight_la
    assert not status.available(NOW + 40)  # RetryInfo's 39 s are long past
    assert not status.available(midnight_la - 1)
    assert status.available(midnight_la)
    # A later short 429 (another window) does not shorten the daily cooldown.
    later = read_signal(429, {"retry-after": "5"}, b"", NOW + 60, la_reset)
    assert transition(status, later, NOW + 60).until == midnight_la


def test_gemini_per_minute_quota_cools_the_key_for_its_retry_delay():
    body = gemini_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "36.4s")
    signal = read_signal(429, {}, body, NOW, la_reset)
    assert signal.verdict is Verdict.RATE_LIMITED
    assert signal.reason == "minute_quota"
    assert signal.until == pytest.approx(NOW + 36.4)


def test_openai_insufficient_quota_waits_for_the_daily_reset():
    body = b'{"error":{"type":"insufficient_quota","code":"insufficient_quota"}}'
    signal = read_signal(429, {}, body, NOW, utc_reset)
    assert signal.verdict is Verdict.QUOTA_EXHAUSTED
    assert signal.until == datetime(2026, 12, 3, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"error":{"code":"invalid_api_key"}}'),
        (403, b"forbidden"),
        (
            400,
            b'{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",'
            b'"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}',
        ),
    ],
)
def test_rejected_keys_are_invalid(status, body):
    assert read_signal(status, {}, body, NOW, utc_reset).verdict is Verdict.INVALID


def test_a_bad_request_says_nothing_about_the_key():
    signal = read_signal(400, {}, b'{"error":{"message":"max_tokens too large"}}', NOW, utc_reset)
    assert signal.verdict is Verdict.CLIENT_ERROR
    assert transition(OK_STATUS, signal, NOW) is OK_STATUS


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 408, None])
def test_5xx_never_marks_a_key_out_of_quota(status):
    """Overload, server errors and timeouts are the endpoint's trouble. Even with a Retry-After,
    spent-window headers and a body that reads like a daily quota failure, a single one leaves
    the key ok and available."""
    headers = {
        "retry-after": "3600",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1h",
    }
    body = gemini_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    signal = read_signal(status, headers, body, NOW, utc_reset)
    assert signal.verdict is Verdict.UPSTREAM_FAULT
    assert signal.until is None
    status_after = transition(OK_STATUS, signal, NOW)
    assert status_after.state is KeyState.OK
    assert status_after.available(NOW)


def test_an_invalid_key_is_quarantined_and_a_working_probe_frees_it():
    policy = Policy(invalid_probe_s=3600)
    status = transition(OK_STATUS, read_signal(401, {}, b"", NOW, utc_reset), NOW, policy)
    assert status.state is KeyState.INVALID
    assert not status.available(NOW + 3599)
    assert status.available(NOW + 3600)  # the hourly probe
    probed = transition(status, read_signal(200, {}, b"", NOW + 3600, utc_reset), NOW + 3600)
    assert probed.state is KeyState.OK


def test_a_header_dict_is_searched_whatever_the_case_or_type_of_its_names():
    """The quick look at a response's header names (all at once) finds what the full scan
    would: names in any case, among many others, and names that are bytes."""
    now = 1_800_000_000.0
    plain = {f"x-other-{i}": "1" for i in range(20)}
    assert read_signal(200, plain, b"", now, utc_reset).verdict is Verdict.OK
    mixed = {**plain, "Retry-After": "30"}
    signal = read_signal(429, mixed, b"", now, utc_reset)
    assert (signal.verdict, signal.until) == (Verdict.RATE_LIMITED, now + 30)
    spent = {**plain, "X-RateLimit-Limit-Requests": "10", "X-RateLimit-Remaining-Requests": "0"}
    spent["X-RateLimit-Reset-Requests"] = "6s"
    signal = read_signal(200, spent, b"", now, utc_reset)
    assert (signal.verdict, signal.until) == (Verdict.RATE_LIMITED, now + 6)
    as_bytes = {**plain, b"retry-after": b"12"}
    assert read_signal(429, as_bytes, b"", now, utc_reset).until == now + 12


PLAIN = {"content-type": "application/json", "server": "nginx", "content-length": "612"}


@pytest.mark.parametrize(
    ("status", "headers", "quiet"),
    [
        (200, {}, True),
        (200, None, True),
        (200, PLAIN, True),
        (304, PLAIN, True),
        (
            200,
            {**PLAIN, "X-RateLimit-Remaining-Requests": "0", "x-ratelimit-reset-requests": "6s"},
            False,
        ),
        (200, {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "900"}, False),
        (200, {"anthropic-ratelimit-requests-remaining": "3"}, False),
        (200, {"Retry-After": "30"}, False),
        (200, {b"retry-after": b"12"}, False),
        (200, [("x-ratelimit-remaining-requests", "0")], False),
        (400, PLAIN, False),
        (401, {}, False),
        (408, {}, False),
        (429, {}, False),
        (500, PLAIN, False),
    ],
)
def test_says_nothing_only_where_the_signal_is_a_plain_ok(status, headers, quiet):
    """The key pool skips read_signal when says_nothing: that must never hide a verdict or a
    learned window (a 4xx or 5xx, a rate-limit header in any case or type)."""
    assert says_nothing(status, headers) is quiet
    signal = read_signal(status, headers, b"", NOW, utc_reset)
    plain = signal.verdict is Verdict.OK and signal.requests is None and signal.tokens is None
    assert plain or not quiet
