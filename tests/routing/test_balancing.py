"""How requests spread over providers and keys under each strategy."""

from __future__ import annotations

import asyncio
from collections import Counter

from fakes.openai_upstream import Reply
from gateway_config import chat, config, model, openai_provider


async def test_weighted_respects_weights(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    gw = await gateway(
        config(
            {"a": openai_provider(a, "ka1", "ka2"), "b": openai_provider(b, "kb")},
            {
                "m": model(
                    {"provider": "a", "weight": 3},
                    {"provider": "b", "weight": 1},
                    strategy="weighted",
                )
            },
        )
    )
    client = gw.openai()
    for _ in range(10):
        await asyncio.gather(*(chat(client, "m") for _ in range(20)))
    assert len(a.requests) + len(b.requests) == 200
    # Expected 150 / 50; the bounds are about five standard deviations wide.
    assert 120 <= len(a.requests) <= 180, (len(a.requests), len(b.requests))
    keys = Counter(r.key for r in a.requests)
    assert set(keys) == {"ka1", "ka2"}
    assert abs(keys["ka1"] - keys["ka2"]) <= 0.2 * len(a.requests), keys


async def test_round_robin_alternates_providers_exactly(gateway, fake_upstream):
    fakes = [await fake_upstream(name) for name in ("a", "b", "c")]
    gw = await gateway(
        config(
            {f.name: openai_provider(f) for f in fakes},
            {"m": model("a", "b", "c", strategy="round-robin")},
        )
    )
    client = gw.openai()
    order = []
    for _ in range(9):
        _, headers = await chat(client, "m")
        order.append(headers["x-apex-provider"])
    assert sorted(order[:3]) == ["a", "b", "c"]
    assert order == order[:3] * 3
    assert [len(f.requests) for f in fakes] == [3, 3, 3]


async def test_round_robin_alternates_keys_exactly(gateway, fake_upstream):
    a = await fake_upstream("a")
    gw = await gateway(
        config(
            {"a": openai_provider(a, "k1", "k2", "k3")}, {"m": model("a", strategy="round-robin")}
        )
    )
    client = gw.openai()
    for _ in range(6):
        await chat(client, "m")
    keys = [r.key for r in a.requests]
    assert sorted(keys[:3]) == ["k1", "k2", "k3"]
    assert keys == keys[:3] * 2


async def test_least_busy_prefers_the_idle_upstream(gateway, fake_upstream):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    a.default = b.default = Reply(delay=1.0)
    gw = await gateway(
        config(
            {"a": openai_provider(a), "b": openai_provider(b)},
            {"m": model("a", "b", strategy="least-busy")},
        )
    )
    client = gw.openai()
    tasks = []
    for launched in range(1, 7):
        busy_before = (a.in_flight, b.in_flight)
        tasks.append(asyncio.create_task(chat(client, "m")))
        while len(a.requests) + len(b.requests) < launched:
            await asyncio.sleep(0.005)
        went_to_a = a.in_flight > busy_before[0]
        chosen, other = (
            (busy_before[0], busy_before[1]) if went_to_a else (busy_before[1], busy_before[0])
        )
        assert chosen <= other, f"request {launched} went to the busier upstream: {busy_before}"
    assert (a.max_in_flight, b.max_in_flight) == (3, 3)
    results = await asyncio.gather(*tasks)
    assert Counter(h["x-apex-provider"] for _, h in results) == {"a": 3, "b": 3}


async def test_latency_prefers_the_faster_upstream_after_warm_up(gateway, fake_upstream):
    fast = await fake_upstream("fast")
    slow = await fake_upstream("slow")
    slow.default = Reply(delay=0.15)
    gw = await gateway(
        config(
            {"fast": openai_provider(fast), "slow": openai_provider(slow)},
            {"m": model("slow", "fast", strategy="latency")},
        )
    )
    client = gw.openai()
    for _ in range(6):
        await chat(client, "m")
    assert slow.requests, "warm-up never measured the slow upstream"
    after_warm_up = Counter()
    for _ in range(20):
        _, headers = await chat(client, "m")
        after_warm_up[headers["x-apex-provider"]] += 1
    assert after_warm_up["fast"] >= 18, after_warm_up
