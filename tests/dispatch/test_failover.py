"""Failover: which failures move on (other key of the provider first, then the next provider),
how long a key stays out, and what the client gets when nothing can answer."""

from __future__ import annotations

import asyncio
import json
import re
import time

import openai
import pytest
from fakes.openai_upstream import (
    Drop,
    Fail,
    Hang,
    auth_error,
    bad_request,
    rate_limited,
    rate_limited_until,
    server_error,
)
from gateway_config import (
    by_arrival,
    chat,
    config,
    dead_provider,
    model,
    openai_provider,
    stream_text,
)

RETRYABLE = {
    "429": rate_limited(),
    "408": Fail(408, "Request timed out", "timeout_error"),
    "500": server_error(500),
    "502": server_error(502),
    "503": server_error(503),
    "529": Fail(529, "Overloaded", "overloaded_error"),
    "closed-connection": Drop(),
    "timeout": Hang(10),
}


async def two_providers(gateway, fake_upstream, **a_settings):
    """Model "m" (round-robin) over provider a (keys ka1, ka2) and provider b (key kb)."""
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    gw = await gateway(
        config(
            {"a": openai_provider(a, "ka1", "ka2", **a_settings), "b": openai_provider(b, "kb")},
            {"m": model("a", "b", strategy="round-robin")},
        )
    )
    return a, b, gw


def assert_other_key_then_next_provider(a_name: str, log, a_keys: set[str]) -> None:
    """In arrival order: two requests to provider a with its two different keys, then b."""
    names = [name for name, _ in log]
    first_a = names.index(a_name)
    assert names[first_a : first_a + 3] == [a_name, a_name, "b"], names
    assert {log[first_a][1].key, log[first_a + 1][1].key} == a_keys


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("failure", list(RETRYABLE))
async def test_retryable_failure_tries_other_key_then_next_provider(
    gateway, fake_upstream, failure, stream
):
    a, b, gw = await two_providers(gateway, fake_upstream, timeout=0.4)
    a.default = RETRYABLE[failure]
    client = gw.openai()
    attempts = []
    for _ in range(2):  # round-robin: exactly one of the two starts at provider a
        if stream:
            text, _, headers = await stream_text(client, "m")
        else:
            completion, headers = await chat(client, "m")
            text = completion.choices[0].message.content
        assert text.startswith("b (m) heard"), text
        assert headers["x-apex-provider"] == "b"
        attempts.append(int(headers["x-apex-attempts"]))
    assert sorted(attempts) == [1, 3]
    assert_other_key_then_next_provider("a", by_arrival(a, b), {"ka1", "ka2"})
    assert len(a.requests) == 2  # the later request started at b (round-robin) and b answered


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_connection_refused_fails_over(gateway, fake_upstream, stream):
    b = await fake_upstream("b")
    gw = await gateway(
        config(
            {"dead": dead_provider("kd1", "kd2"), "b": openai_provider(b, "kb")},
            {"m": model("dead", "b", strategy="round-robin")},
        )
    )
    client = gw.openai()
    attempts = []
    for _ in range(2):
        if stream:
            text, _, headers = await stream_text(client, "m")
        else:
            completion, headers = await chat(client, "m")
            text = completion.choices[0].message.content
        assert text.startswith("b (m) heard")
        attempts.append(int(headers["x-apex-attempts"]))
    assert sorted(attempts) == [1, 3]  # dead's two keys, then b
    assert len(b.requests) == 2


async def test_stream_that_dies_before_any_data_fails_over(gateway, fake_upstream):
    from fakes.openai_upstream import BreakStream

    a, b, gw = await two_providers(gateway, fake_upstream)
    a.default = BreakStream(after=0)
    client = gw.openai()
    for _ in range(2):
        text, _, headers = await stream_text(client, "m")
        assert text == "b (m) heard: ping from the test"
    assert len(a.requests) == 2
    assert_other_key_then_next_provider("a", by_arrival(a, b), {"ka1", "ka2"})


async def keys_used(client, fake, count: int) -> list[str]:
    before = len(fake.requests)
    for _ in range(count):
        await chat(client, "m")
    return [r.key for r in fake.requests[before:]]


async def one_provider_two_keys(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(
        config({"a": openai_provider(a, "k1", "k2")}, {"m": model("a", strategy="round-robin")})
    )
    return a, gw, gw.openai()


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def test_429_retry_after_seconds_cools_the_key_that_long(gateway, fake_upstream):
    a, gw, client = await one_provider_two_keys(gateway, fake_upstream)
    a.queue(rate_limited(retry_after=1))
    started = time.monotonic()
    _, headers = await chat(client, "m")
    assert headers["x-apex-attempts"] == "2"
    limited, good = a.requests[0].key, a.requests[1].key
    assert limited != good
    assert await keys_used(client, a, 3) == [good] * 3
    # Past the base cooldown (0.3 s) but inside Retry-After: still skipped.
    await sleep_until(started + 0.65)
    assert await keys_used(client, a, 2) == [good] * 2
    await sleep_until(started + 1.3)
    assert limited in await keys_used(client, a, 2)


async def test_429_retry_after_http_date_cools_the_key_until_then(gateway, fake_upstream):
    a, gw, client = await one_provider_two_keys(gateway, fake_upstream)
    # An HTTP-date has whole seconds: the key is out for somewhere in (1 s, 2 s].
    a.queue(rate_limited_until(2.0))
    started = time.monotonic()
    await chat(client, "m")
    limited, good = a.requests[0].key, a.requests[1].key
    await sleep_until(started + 0.8)
    assert await keys_used(client, a, 3) == [good] * 3
    await sleep_until(started + 2.3)
    assert limited in await keys_used(client, a, 2)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_takes_the_key_out_for_long(gateway, fake_upstream, status):
    a, gw, client = await one_provider_two_keys(gateway, fake_upstream)
    a.behaviour = lambda req: auth_error(status) if req.key == "k1" else None
    for _ in range(4):
        completion, _ = await chat(client, "m")
        assert completion.choices[0].message.content.startswith("a (m)")
    assert [r.key for r in a.requests].count("k1") == 1
    await asyncio.sleep(
        1.2
    )  # longer than cooldown_max_s (1.0): only the auth cooldown keeps it out
    assert await keys_used(client, a, 4) == ["k2"] * 4


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_fails_over_to_next_provider(gateway, fake_upstream, status):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    a.default = auth_error(status)
    gw = await gateway(
        config(
            {"a": openai_provider(a, "ka"), "b": openai_provider(b, "kb")},
            {"m": model("a", "b", strategy="round-robin")},
        )
    )
    client = gw.openai()
    for _ in range(4):
        completion, headers = await chat(client, "m")
        assert headers["x-apex-provider"] == "b"
    assert len(a.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_400_is_returned_as_is_without_retry(gateway, fake_upstream, stream):
    a, b, gw = await two_providers(gateway, fake_upstream)
    message = "Invalid value for 'temperature': 7 is greater than the maximum of 2"
    a.default = b.default = bad_request(message)
    with pytest.raises(openai.BadRequestError) as err:
        if stream:
            await stream_text(gw.openai(), "m", temperature=7)
        else:
            await chat(gw.openai(), "m", temperature=7)
    assert err.value.status_code == 400
    assert message in err.value.message
    assert err.value.code == "invalid_value"
    assert len(a.requests) + len(b.requests) == 1
    assert err.value.response.headers["x-apex-attempts"] == "1"


async def test_400_does_not_cool_the_key_down(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": openai_provider(a, "only")}, {"m": model("a")}))
    a.queue(bad_request())
    with pytest.raises(openai.BadRequestError):
        await chat(gw.openai(), "m")
    completion, _ = await chat(gw.openai(), "m")
    assert completion.choices[0].message.content.startswith("a (m)")


async def test_attempt_limit_is_honoured(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    a.default = b.default = server_error(500)
    gw = await gateway(
        config(
            {"a": openai_provider(a, "k1", "k2", "k3"), "b": openai_provider(b, "kb")},
            {"m": model("a", "b")},
            retry={"max_attempts": 2},
        )
    )
    with pytest.raises(openai.APIStatusError) as err:
        await chat(gw.openai(), "m")
    assert err.value.status_code == 503
    assert len(a.requests) + len(b.requests) == 2
    assert err.value.response.headers["x-apex-attempts"] == "2"


async def test_all_failed_is_503_listing_attempts_without_keys(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    c = await fake_upstream("c")
    a.default = server_error(500, "a is broken")
    b.default = server_error(502, "b gateway down")
    c.default = Hang(10)
    keys = ["sk-secret-aaaa-1111", "sk-secret-bbbb-2222", "sk-secret-cccc-3333"]
    gw = await gateway(
        config(
            {
                "pa": openai_provider(a, keys[0]),
                "pb": openai_provider(b, keys[1]),
                "pc": openai_provider(c, keys[2], timeout=0.4),
            },
            {"m": model("pa", "pb", "pc")},
        )
    )
    async with gw.http().post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    ) as resp:
        raw = await resp.text()
        status, headers = resp.status, dict(resp.headers)
    assert status == 503
    message = json.loads(raw)["error"]["message"]
    for provider, detail in (("pa", "500"), ("pb", "502"), ("pc", None)):
        assert provider in message, message
        if detail:
            assert re.search(rf"{provider}\b[^;]*{detail}", message), message
    assert re.search(r"pc\b[^;]*time[d ]*out", message, re.IGNORECASE), message
    for key in keys:
        assert key not in raw and key not in str(headers)


async def test_all_failed_message_never_carries_a_key_an_upstream_echoed(gateway, fake_upstream):
    a = await fake_upstream("a")
    key = "sk-proj-LEAKME0123456789abcdef"
    # Some upstreams quote the key they rejected in their error message.
    a.behaviour = lambda req: auth_error(401, f"Incorrect API key provided: {req.key}.")
    gw = await gateway(config({"a": openai_provider(a, key)}, {"m": model("a")}))
    async with gw.http().post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    ) as resp:
        raw = await resp.text()
        status = resp.status
    assert status == 503
    assert "a" in raw and "401" in raw
    assert key not in raw


async def test_relayed_client_error_never_carries_a_configured_secret(gateway, fake_upstream):
    """A 400 is relayed as the upstream wrote it; any configured secret it quotes is removed
    (here another provider's key, which the upstream should never have seen)."""
    a = await fake_upstream("a")
    other_key = "sk-other-provider-0123456789abcdef"
    a.default = bad_request(f"Invalid value; did you mean to use {other_key}?")
    b = await fake_upstream("b")
    gw = await gateway(
        config(
            {"a": openai_provider(a, "ka-0123456789"), "b": openai_provider(b, other_key)},
            {"m": model("a")},
        )
    )
    async with gw.http().post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    ) as resp:
        raw = await resp.text()
        status = resp.status
    assert status == 400
    assert "Invalid value" in raw
    assert other_key not in raw


async def test_all_rate_limited_is_429_with_soonest_retry_after(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    a.default = rate_limited(retry_after=5)
    b.default = rate_limited(retry_after=2)
    gw = await gateway(
        config(
            {"a": openai_provider(a, "ka"), "b": openai_provider(b, "kb")}, {"m": model("a", "b")}
        )
    )
    client = gw.openai()
    with pytest.raises(openai.RateLimitError) as err:
        await chat(client, "m")
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 2
    # Both keys are now cooling down: answered at once, without touching an upstream.
    with pytest.raises(openai.RateLimitError) as again:
        await chat(client, "m")
    assert 1 <= int(again.value.response.headers["retry-after"]) <= 2
    assert len(a.requests) == len(b.requests) == 1


async def test_exponential_cooldown_grows_and_resets_on_success(gateway, fake_upstream):
    """A 429 without Retry-After: the key is out for cooldown_base_s, doubled on each one in a
    row. (A 5xx no longer cools a key: tests/dispatch/test_endpoint_faults.py.)"""
    a = await fake_upstream("a")
    gw = await gateway(config({"a": openai_provider(a, "only")}, {"m": model("a")}))
    client = gw.openai()

    async def outcome() -> str:
        try:
            await chat(client, "m")
        except openai.APIStatusError as exc:
            return str(exc.status_code)
        return "ok"

    a.queue(rate_limited())
    assert await outcome() == "429"  # first failure: out for 0.3 s
    await asyncio.sleep(0.4)
    a.queue(rate_limited())
    assert await outcome() == "429"  # second failure in a row: out for 0.6 s
    await asyncio.sleep(0.4)
    assert await outcome() == "429"
    assert len(a.requests) == 2  # still cooling down: never reached the upstream
    await asyncio.sleep(0.35)
    assert await outcome() == "ok"  # success resets the failure count
    a.queue(rate_limited())
    assert await outcome() == "429"  # out for the base 0.3 s again, not 1.0 s
    await asyncio.sleep(0.4)
    assert await outcome() == "ok"
    assert len(a.requests) == 5
