"""Fault windows (health/faults.py): N of the last M attempts within window_s degrade a key or
an endpoint; shared by forked workers through the table, and the verdict by replicas through
Redis."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time

import pydantic
import pytest
from test_health_redis import REDIS_URL, needs_redis, prefix, replicas, until  # noqa: F401 - fixture

from apex_ai_proxy.config import RetryConfig
from apex_ai_proxy.health import CooldownTable, HealthState
from apex_ai_proxy.health.config import FaultWindowConfig

FORK = multiprocessing.get_context("fork")
EP = "a http://127.0.0.1:1/v1"
WINDOW = FaultWindowConfig(failures=3, attempts=4, window_s=60, cooldown_s=10)


def health(table: CooldownTable | None = None, **windows: FaultWindowConfig) -> HealthState:
    windows.setdefault("key_faults", WINDOW)
    windows.setdefault("endpoint_faults", WINDOW)
    table = table if table is not None else CooldownTable(["a#0", "a#1", EP])
    return HealthState(1.0, 300.0, 3600.0, table, **windows)


def test_a_fault_alone_takes_nothing_out():
    state = health()
    assert state.on_fault("a#0", EP) == "ok"
    now = time.monotonic()
    assert state.is_available("a#0", now) and not state.endpoint_degraded(EP, now)


def test_successes_in_between_outweigh_faults_of_the_last_m_attempts():
    state = health()
    for _ in range(2):
        state.on_fault("a#0", EP)
        state.on_success("a#0", 0.1, EP)
        state.on_success("a#0", 0.1, EP)
    # Attempts so far: F S S F S S. One more fault: the last 4 are F S S F (2 faults); another:
    # S S F F (2). Without the successes in between, 3 faults would have degraded it already.
    assert state.on_fault("a#0", EP) == "ok"
    assert state.on_fault("a#0", EP) == "ok"
    assert not state.endpoint_degraded(EP, time.monotonic())
    assert state.on_fault("a#0", EP) == "degraded"  # S F F F: 3 of the last 4


def test_faults_older_than_the_window_do_not_count():
    state = health(key_faults=FaultWindowConfig(failures=2, attempts=4, window_s=0.05))
    state.on_fault("a#0", EP)
    time.sleep(0.08)
    assert state.on_fault("a#0", EP) == "ok"
    assert state.on_fault("a#0", EP) == "degraded"


def test_endpoint_faults_add_up_across_its_keys_and_a_success_clears_it():
    state = health()
    for key in ("a#0", "a#1", "a#0"):
        state.on_fault(key, EP)
    now = time.monotonic()
    assert state.endpoint_degraded(EP, now)
    assert state.is_available("a#0", now) and state.is_available("a#1", now)
    assert 9 < state.unit(EP).cooldown_until - now <= 10
    state.on_success("a#1", 0.1, EP)
    assert not state.endpoint_degraded(EP, time.monotonic())


def test_a_degraded_key_cooldown_doubles_on_repeat():
    window = FaultWindowConfig(failures=1, attempts=1, window_s=60, cooldown_s=10)
    state = health(key_faults=window)
    cooldowns = []
    for _ in range(3):
        assert state.on_fault("a#0", EP) == "degraded"
        unit = state.unit("a#0")
        cooldowns.append(round(unit.cooldown_until - time.monotonic()))
        unit.cooldown_until = time.monotonic() - 1  # its cooldown is over; it fails again
    assert cooldowns == [10, 20, 40]
    assert state.unit("a#0").degraded and state.unit("a#0").state(time.monotonic()) == "ok"


def test_an_ordinary_success_writes_nothing_to_the_table():
    table = CooldownTable(["a#0", EP])
    state = health(table)
    before = bytes(table._buffer)
    for _ in range(3):
        state.on_success("a#0", 0.1, EP)
    assert bytes(table._buffer) == before


def _fault_twice(table: CooldownTable) -> None:
    state = health(table)
    state.on_fault("a#0", EP)
    state.on_fault("a#1", EP)


def test_workers_add_to_one_fault_window():
    table = CooldownTable(["a#0", "a#1", EP], shared=True)
    proc = FORK.Process(target=_fault_twice, args=(table,))
    proc.start()
    proc.join(20)
    assert proc.exitcode == 0
    state = health(table)
    state.on_fault("a#0", EP)  # the third of the endpoint's last 4, two of them in the child
    assert state.endpoint_degraded(EP, time.monotonic())


def test_a_reload_keeps_a_degraded_endpoint_and_forgets_a_removed_one():
    gone = "b http://127.0.0.1:2/v1"
    table = CooldownTable(["a#0", "a#1", EP, gone])
    old = health(table)
    for _ in range(3):
        old.on_fault("a#0", EP)
        old.on_fault("a#1", gone)
    new = health(table)
    new.carry_over(old, {"a#0": "a#0", "a#1": "a#1"}, [EP])
    now = time.monotonic()
    assert new.endpoint_degraded(EP, now)
    assert not new.endpoint_degraded(gone, now) and not old.endpoint_degraded(gone, now)


@pytest.mark.parametrize(
    "window",
    [{"failures": 5, "attempts": 4}, {"attempts": 33}, {"failures": 0}, {"window_s": 0}],
)
def test_fault_window_config_is_validated(window):
    with pytest.raises(pydantic.ValidationError):
        RetryConfig(key_faults=window)


@needs_redis
async def test_a_degraded_key_and_endpoint_reach_the_other_replica(prefix):  # noqa: F811
    one, two = health(), health()
    async with replicas([one, two], prefix):
        for _ in range(3):
            one.on_fault("a#0", EP)
        await until(lambda: two.endpoint_degraded(EP, time.monotonic()))
        await until(lambda: not two.is_available("a#0", time.monotonic()))
        assert two.unit("a#0").state(time.monotonic()) == "degraded"
        one.on_success("a#1", 0.1, EP)  # the endpoint answers again
        await until(lambda: not two.endpoint_degraded(EP, time.monotonic()))


@needs_redis
async def test_state_redis_shares_degraded_keys_and_the_pool_command_shows_them(
    gateway,
    fake_upstream,
    prefix,  # noqa: F811
    capsys,
):
    from fakes.openai_upstream import server_error
    from gateway_config import chat, config, openai_provider
    from redis.asyncio import Redis

    from apex_ai_proxy.cli import main

    bad, good = "sk-bad-aaaaaaaa1111", "sk-good-bbbbbbbb2222"
    a = await fake_upstream("a")
    a.behaviour = lambda req: server_error(500) if req.key == bad else None
    gw = await gateway(
        config(
            {"a": openai_provider(a, bad, good)},
            {"m": {"strategy": "round-robin", "providers": [{"provider": "a"}]}},
            retry={
                "cooldown_max_s": 60,
                "key_faults": {"failures": 1, "attempts": 1, "cooldown_s": 30},
            },
            # No `health:` section: with Redis state, cooldowns are shared there too.
            state={"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix},
        )
    )
    assert gw.app.services.health_sync is not None
    for _ in range(2):
        await chat(gw.openai(), "m")
    assert gw.app.services.health.unit("a#0").state(time.monotonic()) == "degraded"
    client = Redis.from_url(REDIS_URL)
    try:
        units = f"{prefix}health:units"
        for _ in range(100):  # published in the background
            if await client.hexists(units, "a#0"):
                break
            await asyncio.sleep(0.05)
        assert await client.hexists(units, "a#0")
    finally:
        await client.aclose()

    argv = ["pool", "--config", str(gw.config_path), "--json"]
    assert await asyncio.to_thread(main, argv) == 0
    rows = {row["unit"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["a#0|m"]["state"] == "degraded" and 25 <= rows["a#0|m"]["until_s"] <= 30
    assert rows["a#1|m"]["state"] == "ok"
