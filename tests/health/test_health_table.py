"""The cooldown table across real processes (fork, as `serve --workers N` does) and the
health policy on top of it."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import yaml

from apex_ai_proxy.config import load_config_file
from apex_ai_proxy.health import CooldownTable, HealthState, unit_names
from apex_ai_proxy.routing import Router

FORK = multiprocessing.get_context("fork")


def health(table: CooldownTable) -> HealthState:
    return HealthState(
        cooldown_base_s=1.0, cooldown_max_s=300.0, auth_cooldown_s=3600.0, table=table
    )


def in_child(target, *args) -> None:
    """Run `target(*args)` in a forked process; its exit code 0 means its checks held."""
    proc = FORK.Process(target=target, args=args)
    proc.start()
    proc.join(20)
    assert proc.exitcode == 0, f"the child process failed (exit code {proc.exitcode})"


def _rate_limit(table: CooldownTable, name: str) -> None:
    health(table).on_failure(name, retry_after=60, rate_limited=True)


def _expect_cooling(table: CooldownTable, name: str) -> None:
    state = health(table)
    unit = state.unit(name)
    ok = (
        not state.is_available(name, time.monotonic())
        and unit.rate_limited
        and unit.failures == 1
        and 59 < unit.cooldown_until - time.monotonic() <= 60
    )
    raise SystemExit(0 if ok else 1)


def test_a_cooldown_written_by_a_forked_worker_is_seen_by_the_parent():
    table = CooldownTable(["a#0", "b#0"], shared=True)
    in_child(_rate_limit, table, "a#0")
    state = health(table)
    now = time.monotonic()
    assert not state.is_available("a#0", now)
    assert state.is_available("b#0", now)
    unit = state.unit("a#0")
    assert unit.rate_limited and unit.failures == 1
    assert 59 < unit.cooldown_until - now <= 60  # CLOCK_MONOTONIC is one clock for every process


def test_a_cooldown_set_by_the_parent_is_seen_by_a_forked_worker():
    table = CooldownTable(["a#0", "b#0"], shared=True)
    _rate_limit(table, "b#0")
    in_child(_expect_cooling, table, "b#0")


def test_one_worker_success_clears_the_cooldown_for_all():
    table = CooldownTable(["a#0"], shared=True)
    state = health(table)
    state.on_failure("a#0")
    assert not state.is_available("a#0", time.monotonic())
    in_child(_succeed, table, "a#0")
    unit = state.unit("a#0")
    assert state.is_available("a#0", time.monotonic())
    assert unit.failures == 0 and not unit.rate_limited


def _succeed(table: CooldownTable, name: str) -> None:
    health(table).on_success(name, 0.1)


def test_a_private_table_is_not_shared_with_a_forked_process():
    table = CooldownTable(["a#0"])
    in_child(_rate_limit, table, "a#0")
    assert health(table).is_available("a#0", time.monotonic())


def test_a_name_the_table_does_not_know_gets_a_private_slot():
    table = CooldownTable(["a#0"], shared=True)
    in_child(_rate_limit, table, "unknown#0")
    state = health(table)
    assert state.is_available("unknown#0", time.monotonic())
    state.on_failure("unknown#0", retry_after=5)
    assert not state.is_available("unknown#0", time.monotonic())
    assert state.is_available("a#0", time.monotonic())


def test_in_flight_and_latency_stay_per_process():
    table = CooldownTable(["a#0"], shared=True)
    in_child(_busy, table, "a#0")
    unit = health(table).unit("a#0")
    assert unit.in_flight == 0 and unit.ewma_ttfb is None


def _busy(table: CooldownTable, name: str) -> None:
    state = health(table)
    state.unit(name).in_flight += 3
    state.on_success(name, 0.25)


ONE, TWO = 1.2345678901234567e300, -9.876543210987654e-300  # no byte in common


def _flip(table: CooldownTable, name: str, rounds: int) -> None:
    unit = health(table).unit(name)
    for i in range(rounds):
        unit.cooldown_until = ONE if i & 1 else TWO


def test_concurrent_writes_never_show_a_torn_value():
    """Last writer wins, but a reader only ever sees a value some writer wrote."""
    table = CooldownTable(["a#0"], shared=True)
    writers = [FORK.Process(target=_flip, args=(table, "a#0", 200_000)) for _ in range(2)]
    for proc in writers:
        proc.start()
    unit = health(table).unit("a#0")
    seen = set()
    while any(proc.is_alive() for proc in writers):
        seen.add(unit.cooldown_until)
    for proc in writers:
        proc.join()
    assert seen <= {0.0, ONE, TWO}
    assert {ONE, TWO} & seen, "the reader saw no write: the test proves nothing"


def test_unit_names_cover_every_key_a_route_can_use(tmp_path: Path):
    cfg = {
        "providers": {
            "oa": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_keys": ["k1", "k2"]},
            "spare": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k3"},
            "local": {"kind": "echo"},
        },
        "models": {
            "m": {
                "providers": [
                    {"provider": "oa"},
                    {"provider": "oa", "model": "other", "api_keys": ["k4"]},
                    {"provider": "local"},
                ]
            }
        },
    }
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    router = Router(load_config_file(path, {}))
    names = unit_names(router)
    assert len(names) == len(set(names))
    used = {k.name for route in router.routes.values() for t in route.targets for k in t.keys}
    used |= {k.name for t in router.resolve("anything#spare").targets for k in t.keys}
    used |= {k.name for t in router.resolve("m#oa").targets for k in t.keys}
    assert used <= set(names)
    assert set(names) == {"oa#0", "oa#1", "spare#0", "local#local", "oa@m[1]#0"}


def test_a_key_that_keeps_failing_never_overflows_the_backoff():
    """base * 2**(failures-1) stopped fitting a float at the 1025th failure (OverflowError)."""
    state = health(CooldownTable(["a#0"]))
    for _ in range(1100):
        cooldown = state.on_failure("a#0")
    assert cooldown == 300.0
    assert state.unit("a#0").failures == 1100


def test_cooling_by_provider_counts_units_cooled_by_another_worker():
    table = CooldownTable(["a#0", "a#1", "b@m[0]#0"], shared=True)
    in_child(_rate_limit, table, "a#1")
    assert health(table).cooling_by_provider() == {"a": 1, "b": 0}
