"""The key pool through a real gateway: configured and learned quotas, headroom, 429s.

The upstream (tests/fakes/quota_upstream.py) enforces each key's quota as the real APIs do and
answers with their real formats; the assertions are about what reached it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yaml
from fakes.quota_upstream import QuotaUpstream
from fakes.redis_server import RedisServer
from keypool.conftest import REDIS_URL, redis_skip_reason
from redis.asyncio import Redis

from apex_ai_proxy.keypool.limits import next_daily_reset

TOKEN = "client-token"


@pytest.fixture
async def quota_upstream() -> AsyncIterator[Callable[..., Any]]:
    started: list[QuotaUpstream] = []

    async def start(**kwargs: Any) -> QuotaUpstream:
        fake = await QuotaUpstream(**kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


def pool_config(fake: QuotaUpstream, keys: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"q": {"kind": "openai", "base_url": fake.base_url, "api_keys": keys}},
        "models": {"m": {"providers": [{"provider": "q", "model": "m"}]}},
        "retry": {"cooldown_base_s": 0.05},
        **extra,
    }


async def chat(gw, model: str = "m") -> tuple[int, Any, dict]:
    http = gw.http()
    async with http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


async def learns_a_429_then_calls_nobody(
    gw: Any, fake: QuotaUpstream, key: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """`key` is spent upstream for 20 s: the next request gets the upstream's 429 (learned), the
    one after the pool's 429 without any upstream call. That second 429's headers and body."""
    fake.exhaust(key, 20)
    status, _, body = await chat(gw)
    assert status == 429, body
    assert fake.refused == [(key, "chat")]
    calls = fake.calls

    status, headers, body = await chat(gw)

    assert status == 429, body
    assert fake.calls == calls  # known to be out: nobody was called
    return headers, body


async def test_pool_capacity_is_spent_without_a_single_upstream_429(gateway, quota_upstream):
    fake = await quota_upstream(rpm={"key-a": 2, "key-b": 4, "key-c": 6})
    keys = [
        {"key": "key-a", "limits": {"rpm": 2}},
        {"key": "key-b", "limits": {"rpm": 4}},
        {"key": "key-c", "limits": {"rpm": 6}},
    ]
    gw = await gateway(pool_config(fake, keys))

    answers = [await chat(gw) for _ in range(12)]

    assert [status for status, _, _ in answers] == [200] * 12
    assert fake.refused == []
    assert Counter(key for key, _ in fake.served) == {"key-a": 2, "key-b": 4, "key-c": 6}
    assert answers[0][1]["x-ratelimit-limit-requests"] == "12"
    remaining = [int(h["x-ratelimit-remaining-requests"]) for _, h, _ in answers]
    assert remaining == list(range(11, -1, -1))  # what is left once this request is counted

    status, headers, body = await chat(gw)
    assert status == 429, body
    assert body["error"]["type"] == "rate_limit_error"
    assert 1 <= int(headers["retry-after"]) <= 66  # a minute window, counted in 5 s buckets
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert fake.calls == 12  # the 13th never reached the upstream


async def test_spent_pool_answers_429_with_earliest_reset_without_calling_upstream(
    gateway, quota_upstream
):
    fake = await quota_upstream(rpm={"key-a": 1, "key-b": 5})
    keys = [
        {"key": "key-a", "limits": {"rpm": 1}},  # spent by the first request, for a minute
        {"key": "key-b", "limits": {"rpm": 5}},
    ]
    gw = await gateway(pool_config(fake, keys))

    assert (await chat(gw))[0] == 200
    assert fake.served == [("key-a", "chat")]
    # key-b's quota is spent elsewhere for 20 s: sooner than key-a's minute. The gateway learns
    # it from key-b's 429; key-a it knows to be out without asking.
    headers, body = await learns_a_429_then_calls_nobody(gw, fake, "key-b")

    assert 18 <= int(headers["retry-after"]) <= 21, headers  # key-b's reset, not key-a's
    assert "No upstream was called" in body["error"]["message"]


async def test_5xx_never_marks_a_key_out_of_quota(gateway, quota_upstream):
    fake = await quota_upstream(rpm={"key-a": 30, "key-b": 3})
    # key-a has the most headroom: it is tried first every time, and fails every time.
    keys = [{"key": "key-a", "limits": {"rpm": 30}}, {"key": "key-b", "limits": {"rpm": 3}}]
    gw = await gateway(pool_config(fake, keys))
    for status in (500, 503, 529):
        fake.fail_next("key-a", status)

    for _ in range(3):  # key-a fails each time, key-b answers
        status, _, body = await chat(gw)
        assert status == 200, body
        await asyncio.sleep(0.12)  # past the brief endpoint cooldown (cooldown_base_s)
    assert [s for _, s in fake.failed] == [500, 503, 529]

    pool = gw.app.services.pool
    views = await pool.snapshot()
    key_a = views["q#0|m"]
    assert key_a.state == "ok"
    assert key_a.remaining["rpm"] == 30  # failed calls were not charged to its quota
    # key-a is used again as soon as the endpoint cooldown is over: its quota is intact.
    await asyncio.sleep(0.5)
    for _ in range(3):
        assert (await chat(gw))[0] == 200
    assert Counter(key for key, _ in fake.served) == {"key-a": 3, "key-b": 3}
    assert fake.refused == []


async def test_two_replicas_enforce_a_configured_rpm_once_not_twice(gateway, quota_upstream):
    if reason := redis_skip_reason():
        pytest.skip(reason)
    fake = await quota_upstream(rpm={"key-a": 2, "key-b": 2})
    prefix = f"apex-test:pool-e2e:{uuid.uuid4().hex}:"
    keys = [{"key": "key-a", "limits": {"rpm": 2}}, {"key": "key-b", "limits": {"rpm": 2}}]
    state = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    one = await gateway(pool_config(fake, keys, state=state))
    two = await gateway(pool_config(fake, keys, state=state))
    try:
        statuses = [(await chat(gw))[0] for gw in (one, two, one, two, one, two)]
        assert sorted(statuses) == [200] * 4 + [429] * 2
        assert fake.calls == 4  # both replicas counted against the one quota
        assert fake.refused == []
    finally:
        raw = Redis.from_url(REDIS_URL)
        found = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        if found:
            await raw.delete(*found)
        await raw.aclose()


async def test_gemini_per_day_quota_cools_the_key_until_reset(gateway, quota_upstream):
    fake = await quota_upstream(rpd={"gem-a": 1, "gem-b": 100})
    config = {
        "gateway_tokens": [TOKEN],
        "providers": {
            "gem": {"kind": "gemini", "base_url": fake.root_url, "api_keys": ["gem-a", "gem-b"]}
        },
        "models": {"g": {"providers": [{"provider": "gem", "model": "gemini-fake"}]}},
        "retry": {"cooldown_base_s": 0.05},
    }
    gw = await gateway(config)  # no limits configured: the day quota is learned

    for _ in range(3):  # gem-a serves once, then answers Gemini's per-day 429
        status, _, body = await chat(gw, "g")
        assert status == 200, body
    assert fake.refused == [("gem-a", "gemini")]

    pool = gw.app.services.pool
    views = await pool.snapshot()
    key_a = views["gem#0|gemini-fake"]
    assert key_a.state == "quota_exhausted"
    # Until Gemini's daily reset (midnight Pacific), not for a Retry-After's seconds.
    expected = next_daily_reset(time.time(), "America/Los_Angeles")
    assert abs(key_a.until - expected) < 5

    await asyncio.sleep(0.3)  # past any short cooldown
    for _ in range(4):
        assert (await chat(gw, "g"))[0] == 200
    assert fake.refused == [("gem-a", "gemini")]  # never asked again
    assert Counter(key for key, _ in fake.served) == {"gem-a": 1, "gem-b": 6}


async def commands_by_name(client: Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


async def test_redis_state_costs_one_round_trip_per_request(gateway, quota_upstream, tmp_path):
    """With Redis state a request is at most one EVALSHA: no reads before, no settle after (rpm
    only: nothing depends on the real token count), nothing on a plain success to record.
    Grants (keypool/grants.py) serve some without any; once they are refunded Redis counts
    exactly the requests served."""
    server = await RedisServer(tmp_path / "redis").start()
    client = server.client()
    try:
        fake = await quota_upstream(rpm={"key-a": 100, "key-b": 100})
        keys = [{"key": "key-a", "limits": {"rpm": 100}}, {"key": "key-b", "limits": {"rpm": 100}}]
        state = {"backend": "redis", "redis_url": server.url, "key_prefix": "apex:t:"}
        gw = await gateway(pool_config(fake, keys, state=state))
        assert (await chat(gw))[0] == 200  # the first loads the script (NOSCRIPT, SCRIPT LOAD)
        before = await commands_by_name(client)

        for _ in range(10):
            assert (await chat(gw))[0] == 200

        after = await commands_by_name(client)
        spent = {
            name: after[name] - before.get(name, 0)
            for name in after
            if after[name] != before.get(name, 0) and name != "info"
        }
        # Redis counts the script's own commands too (hgetall, hincrby, time, …): the client's
        # are the EVALSHAs; a settle would be a second one, a status write MULTI/EXEC or DEL.
        assert 1 <= spent["evalsha"] < 10, spent  # reservations and grant refunds
        assert not {"eval", "multi", "exec", "del", "hset", "get", "set"} & spent.keys(), spent

        await asyncio.sleep(1.2)  # every grant has lived its second and been refunded
        counted = 0
        for key in await client.keys("apex:t:u:*"):
            usage = await client.hgetall(key)
            counted += sum(int(v) for k, v in usage.items() if k.startswith(b"m:"))
        assert counted == 11  # the first request and these ten, not one more
    finally:
        await client.aclose()
        await server.stop()


@pytest.mark.parametrize("queue_timeout_s", [0, 5])
async def test_a_spent_pool_waits_up_to_queue_timeout_for_the_first_reset(
    gateway, quota_upstream, queue_timeout_s
):
    fake = await quota_upstream(rpm={"key-a": 100})
    config = pool_config(fake, [{"key": "key-a", "limits": {"rpm": 100}}])
    config["models"]["m"]["queue_timeout_s"] = queue_timeout_s
    gw = await gateway(config)
    fake.exhaust("key-a", 1.5)  # spent elsewhere; its 429 says for how long
    status, headers, _ = await chat(gw)
    assert status == 429 and fake.refused == [("key-a", "chat")]
    calls = fake.calls

    started = time.monotonic()
    status, headers, body = await chat(gw)
    waited = time.monotonic() - started

    if queue_timeout_s:  # waited for the reset, then served
        assert status == 200, body
        assert 0.3 <= waited < 5
        assert fake.calls == calls + 1 and fake.refused == [("key-a", "chat")]
    else:  # answered at once, nobody called
        assert status == 429, body
        assert waited < 1.0
        assert 1 <= int(headers["retry-after"]) <= 2
        assert fake.calls == calls


async def chat_in(gw, session: str | None, **headers: str) -> tuple[int, Any, dict]:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if session is not None:
        body["prompt_cache_key"] = session
    async with gw.http().post(
        "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {TOKEN}", **headers},
    ) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


async def test_a_conversation_stays_on_its_key_and_fails_over_on_429(gateway, quota_upstream):
    fake = await quota_upstream()
    config = pool_config(fake, ["key-a", "key-b", "key-c"])  # no limits: affinity alone
    config["models"]["m"]["affinity_ttl_s"] = 60
    gw = await gateway(config)

    for _ in range(4):
        assert (await chat_in(gw, "conversation-1"))[0] == 200
    first = {key for key, _ in fake.served}
    assert len(first) == 1  # one key served the whole conversation
    for _ in range(3):  # without a session the keys rotate as before
        assert (await chat_in(gw, None))[0] == 200
    assert len({key for key, _ in fake.served[4:]}) == 3

    # Its key is out: the conversation fails over, then stays on the key that answered.
    (pinned,) = first
    fake.exhaust(pinned, 30)
    for _ in range(3):
        assert (await chat_in(gw, "conversation-1"))[0] == 200
    assert fake.refused == [(pinned, "chat")]
    after = [key for key, _ in fake.served[7:]]
    assert len(set(after)) == 1 and pinned not in after

    # A session header (Claude Code's) pins as well.
    served = len(fake.served)
    for _ in range(3):
        assert (await chat_in(gw, None, **{"X-Claude-Code-Session-Id": "s-9"}))[0] == 200
    assert len({key for key, _ in fake.served[served:]}) == 1


async def test_a_conversation_keeps_its_key_on_every_replica_sharing_redis(gateway, quota_upstream):
    """Two gateways on one Redis state: a conversation pinned by the first goes to the same key
    through the second, where round-robin alone would rotate it; its failover on a 429 moves
    the pin for both."""
    if reason := redis_skip_reason():
        pytest.skip(reason)
    fake = await quota_upstream()
    state = {
        "backend": "redis",
        "redis_url": REDIS_URL,
        "key_prefix": f"apex-test:{uuid.uuid4().hex}:",
    }
    config = pool_config(fake, ["key-a", "key-b", "key-c"], state=state)
    config["models"]["m"]["affinity_ttl_s"] = 60
    one, two = await gateway(config), await gateway(config)

    assert (await chat_in(one, "conversation-7"))[0] == 200
    (pinned,) = {key for key, _ in fake.served}
    assert (await chat_in(two, None))[0] == 200  # the second's rotation is now elsewhere
    served = len(fake.served)
    for _ in range(4):
        assert (await chat_in(two, "conversation-7"))[0] == 200
    assert {key for key, _ in fake.served[served:]} == {pinned}

    fake.exhaust(pinned, 30)
    assert (await chat_in(two, "conversation-7"))[0] == 200  # fails over on the second
    moved = fake.served[-1][0]
    assert moved != pinned
    await asyncio.sleep(1.1)  # the first replica's copy of the old pin is no longer trusted
    for _ in range(2):  # and the first's rotation moves on
        assert (await chat_in(one, None))[0] == 200
    served = len(fake.served)
    for gw in (one, two, one, two):
        assert (await chat_in(gw, "conversation-7"))[0] == 200
    assert {key for key, _ in fake.served[served:]} == {moved}


async def test_pool_command_shows_each_key_state_and_quota_never_the_key(
    gateway, quota_upstream, capsys
):
    if reason := redis_skip_reason():
        pytest.skip(reason)
    secret_a, secret_b = "sk-test-aaaaaaaaaaaa1111", "sk-test-bbbbbbbbbbbb2222"
    fake = await quota_upstream(rpm={secret_a: 5, secret_b: 5})
    prefix = f"apex-test:pool-cli:{uuid.uuid4().hex}:"
    state = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    keys = [{"key": secret_a, "limits": {"rpm": 5}}, {"key": secret_b, "limits": {"rpm": 5}}]
    gw = await gateway(pool_config(fake, keys, state=state))
    try:
        for _ in range(3):
            assert (await chat(gw))[0] == 200
        fake.exhaust(secret_b, 30)
        fake.exhaust(secret_a, 30)
        assert (await chat(gw))[0] == 429

        from apex_ai_proxy.cli import main

        assert await asyncio.to_thread(main, ["pool", "--config", str(gw.config_path)]) == 0
        table = capsys.readouterr().out
        assert (
            await asyncio.to_thread(main, ["pool", "--config", str(gw.config_path), "--json"]) == 0
        )
        out = capsys.readouterr().out
    finally:
        raw = Redis.from_url(REDIS_URL)
        found = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        if found:
            await raw.delete(*found)
        await raw.aclose()

    rows = {row["unit"]: row for row in map(json.loads, out.splitlines())}
    assert set(rows) == {"q#0|m", "q#1|m"}
    assert rows["q#0|m"]["hint"] == "…1111" and rows["q#1|m"]["hint"] == "…2222"
    assert sum(row["minute_requests"] for row in rows.values()) >= 3
    assert {row["state"] for row in rows.values()} == {"rate_limited"}
    assert all(25 <= row["until_s"] <= 31 for row in rows.values())
    assert "q#0|m" in table and "rate_limited" in table
    for text in (table, out):
        assert secret_a not in text and secret_b not in text
        assert "aaaaaaaaaaaa" not in text


async def test_tokens_are_settled_with_the_real_usage_of_answers_and_streams(
    gateway, fake_upstream
):
    fake = await fake_upstream("tokens")
    config = {
        "gateway_tokens": [TOKEN],
        "providers": {
            "q": {
                "kind": "openai",
                "base_url": fake.base_url,
                "api_keys": [{"key": "key-a", "limits": {"tpm": 100_000}}],
            }
        },
        "models": {"m": {"providers": [{"provider": "q", "model": "m"}]}},
    }
    gw = await gateway(config)
    client = gw.openai(TOKEN)
    messages = [{"role": "user", "content": "count these few words please"}]

    whole = await client.chat.completions.create(model="m", messages=messages, max_tokens=5000)
    stream = await client.chat.completions.create(
        model="m", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage async for chunk in stream if chunk.usage is not None]

    assert whole.usage is not None and len(usage) == 1
    pool = gw.app.services.pool
    (view,) = (await pool.snapshot()).values()
    # The estimates reserved before each call (hundreds of tokens) were replaced by the real
    # counts when each answer ended.
    assert view.minute_tokens == whole.usage.total_tokens + usage[0].total_tokens
    assert view.minute_requests == 2


async def test_redis_down_falls_back_to_local_state(gateway, quota_upstream, tmp_path):
    server = await RedisServer(tmp_path / "redis").start()
    fake = await quota_upstream(rpm={"key-a": 2})
    state = {"backend": "redis", "redis_url": server.url, "key_prefix": "apex:t:"}
    gw = await gateway(pool_config(fake, [{"key": "key-a", "limits": {"rpm": 2}}], state=state))
    await server.stop()  # Redis goes away before the first request

    statuses = [(await chat(gw))[0] for _ in range(3)]

    assert statuses == [200, 200, 429]  # served, and the rpm still held, by this process alone
    assert fake.calls == 2 and fake.refused == []
    assert gw.app.services.pool.ledger.fallbacks >= 3


@pytest.mark.parametrize("header_format", ["openai", "anthropic"])
async def test_a_key_whose_learned_window_is_spent_is_not_called_until_it_resets(
    gateway, quota_upstream, header_format
):
    # The gateway's own limit is far above the upstream's real one: only the rate-limit
    # headers on the answers can tell it that key-a is spent.
    fake = await quota_upstream(rpm={"key-a": 2, "key-b": 3}, headers=header_format)
    config = pool_config(fake, ["key-a", "key-b"])
    config["providers"]["q"]["limits"] = {"rpm": 1000}
    gw = await gateway(config)

    for _ in range(5):
        status, _, body = await chat(gw)
        assert status == 200, body
    status, headers, body = await chat(gw)

    # Each key's last answer said "0 remaining": neither was asked again, and the sixth
    # request got the pool's 429 without any upstream answering 429.
    assert status == 429, body
    assert fake.refused == []
    assert Counter(key for key, _ in fake.served) == {"key-a": 2, "key-b": 3}
    assert 50 <= int(headers["retry-after"]) <= 61
    pool = gw.app.services.pool
    views = await pool.snapshot()
    assert {v.state for v in views.values()} == {"rate_limited"}


async def test_admin_pool_endpoint_shows_the_same_rows_to_admins_only(gateway, quota_upstream):
    secret = "sk-test-cccccccccccc3333"
    fake = await quota_upstream(rpm={secret: 3})
    config = pool_config(fake, [{"key": secret, "limits": {"rpm": 3}}])
    config["admin_tokens"] = ["admin-token"]
    gw = await gateway(config)
    for _ in range(2):
        assert (await chat(gw))[0] == 200

    http = gw.http()
    async with http.get("/admin/pool", headers={"authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 403  # a client token is not an admin token
    async with http.get("/admin/pool", headers={"authorization": "Bearer admin-token"}) as resp:
        assert resp.status == 200
        raw = await resp.read()
    (key,) = json.loads(raw)["keys"]  # one row per key, its pool rows per model under "quota"
    (row,) = key["quota"]
    assert row["unit"] == "q#0|m" and row["hint"] == "…3333" and row["state"] == "ok"
    assert row["remaining"] == {"rpm": 1} and row["minute_requests"] == 2
    assert secret.encode() not in raw and b"cccccccccccc" not in raw


async def test_metrics_count_the_pool_keys_by_state(gateway, quota_upstream):
    fake = await quota_upstream(rpm={"key-a": 1, "key-b": 1})
    keys = [{"key": "key-a", "limits": {"rpm": 1}}, {"key": "key-b", "limits": {"rpm": 9}}]
    gw = await gateway(pool_config(fake, keys))
    for _ in range(2):
        assert (await chat(gw))[0] == 200
    fake.exhaust("key-b", 30)
    assert (await chat(gw))[0] == 429  # key-b's 429 is learned

    async with gw.http().get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}) as resp:
        text = await resp.text()
    assert 'apex_pool_keys{provider="q",state="rate_limited"} 2.0' in text, text
    assert 'apex_pool_keys{provider="q",state="ok"} 0.0' in text


async def test_a_reload_keeps_each_key_its_quota_wherever_it_moves_in_the_list(
    gateway, quota_upstream
):
    fake = await quota_upstream(rpm={"key-a": 1, "key-b": 1, "key-new": 1})
    config = pool_config(fake, ["key-a", "key-b"], admin_tokens=["admin-token"])
    config["providers"]["q"]["limits"] = {"rpm": 1}
    gw = await gateway(config)
    assert (await chat(gw))[0] == 200
    assert fake.served == [("key-a", "chat")]  # key-a (q#0) has spent its minute

    # A new key goes first: key-a is now q#1, key-b q#2. key-a's spent minute stays key-a's.
    written = yaml.safe_load(gw.config_path.read_text(encoding="utf-8"))
    written["providers"]["q"]["api_keys"] = ["key-new", "key-a", "key-b"]
    gw.config_path.write_text(yaml.safe_dump(written), encoding="utf-8")
    async with gw.http().post(
        "/admin/reload", headers={"authorization": "Bearer admin-token"}
    ) as resp:
        assert resp.status == 200, await resp.text()

    statuses = [(await chat(gw))[0] for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert sorted(key for key, _ in fake.served[1:]) == ["key-b", "key-new"]
    assert fake.refused == []  # key-a was not asked again
    rows = await gw.app.services.pool.snapshot()
    assert rows["q#1|m"].minute_requests == 1  # shown by its new name


async def test_a_lone_key_counts_its_remaining_requests_down_to_the_pools_429(
    gateway, quota_upstream
):
    # One key behind the model: the request takes the pool's walk-less path (take_alone).
    fake = await quota_upstream()
    gw = await gateway(pool_config(fake, [{"key": "key-a", "limits": {"rpm": 3}}]))

    answers = [await chat(gw) for _ in range(4)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [h["x-ratelimit-remaining-requests"] for _, h, _ in answers] == ["2", "1", "0", "0"]
    assert answers[0][1]["x-ratelimit-limit-requests"] == "3"
    assert 1 <= int(answers[3][1]["retry-after"]) <= 66
    assert fake.calls == 3  # the fourth never reached the upstream


async def test_a_lone_key_the_upstream_refuses_fails_with_the_pools_429_then_is_left_alone(
    gateway, quota_upstream
):
    # The gateway's limit is far above the upstream's real one; the upstream's 429 (Retry-After
    # 20 s) is what tells it. With one key there is nothing to fail over to.
    fake = await quota_upstream()
    gw = await gateway(pool_config(fake, [{"key": "key-a", "limits": {"rpm": 1000}}]))
    assert (await chat(gw))[0] == 200

    headers, _ = await learns_a_429_then_calls_nobody(gw, fake, "key-a")

    assert 15 <= int(headers["retry-after"]) <= 21, headers


async def test_a_lone_key_that_fails_with_a_5xx_is_tried_once_per_request(gateway, quota_upstream):
    # As without the pool: a request tries each key once. The 503 is the answer (no second
    # call on the same key), and the failed call is not charged to the key's quota.
    fake = await quota_upstream()
    gw = await gateway(pool_config(fake, [{"key": "key-a", "limits": {"rpm": 5}}]))
    fake.fail_next("key-a", 503)

    status, _, body = await chat(gw)

    assert status == 503, body
    assert fake.failed == [("key-a", 503)] and fake.served == []
    views = await gw.app.services.pool.snapshot()
    assert views["q#0|m"].remaining["rpm"] == 5
