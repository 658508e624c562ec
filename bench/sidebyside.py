"""A feature's cost measured side by side: both gateways under load at the same time.

The paired rounds of `--repeat` run the two scenarios one after the other; on a shared VM whose
speed drifts by 10-30 % within seconds, their ratio moves as much as the costs we compare
(bench/results/2026-12-02-key-pool-session-3.md: −9 % to +25 % for one pair in one series).
Here both gateways run at once on the gateway's CPUs, each with its own wrk at the scenario's
connections: saturated, they share the CPU evenly, so the ratio of their throughputs is the
inverse ratio of their CPU cost per request, and a slow or fast phase of the VM hits both alike
(per-round spread ~1-2 %). Both run slower than alone (two processes on one core evict each
other's caches): the ratio is the measure, not the req/s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from bench.gateway import Gateway
from bench.repeat import median
from bench.scenarios import WrkScenario
from bench.wrk import WrkResult


class Runner(Protocol):
    """What bench/run.py's Runner lends: gateways and wrk runs."""

    def start_gateway(
        self, records: bool, command: str | None, pool: str | None, virtual_key: bool
    ) -> Gateway: ...

    def wrk(self, url: str, s: WrkScenario, duration: float) -> WrkResult: ...


def side_by_side(
    runner: Runner,
    base: WrkScenario,
    feature: WrkScenario,
    rounds: int,
    duration: float,
    log: Callable[[str], None],
) -> dict:
    """`rounds` rounds of both scenarios at once: per round the loss 1 - feature/base req/s."""
    log(f"side by side: {feature.name} vs {base.name}, {rounds} x {duration:g} s")
    gateways = []
    try:
        for s in (base, feature):
            gateways.append(runner.start_gateway(s.records, None, s.pool, s.virtual_key))
        pairs = list(zip((base, feature), gateways, strict=True))
        _at_once(runner, pairs, min(duration, 2.0))  # warm-up
        per_round = []
        for index in range(rounds):
            base_run, feature_run = _at_once(runner, pairs, duration)
            if base_run.errors_total or feature_run.errors_total:
                log(f"  round {index + 1}: errors, left out")
                continue
            loss = round(1 - feature_run.requests_per_s / base_run.requests_per_s, 3)
            per_round.append(
                {
                    "round": index + 1,
                    "value": loss,
                    base.name: round(base_run.requests_per_s, 1),
                    feature.name: round(feature_run.requests_per_s, 1),
                }
            )
            log(f"  round {index + 1}: loss {loss:+.1%}")
    finally:
        for gw in gateways:
            gw.stop()
    return {
        "what": f"1 - {feature.name} req/s / {base.name} req/s, both under load at once",
        "per_round": per_round,
        "median": median([r["value"] for r in per_round]),
    }


def _at_once(
    runner: Runner, pairs: list[tuple[WrkScenario, Gateway]], duration: float
) -> list[WrkResult]:
    results: list[WrkResult | None] = [None] * len(pairs)

    def load(i: int) -> None:
        s, gw = pairs[i]
        results[i] = runner.wrk(gw.base + s.gateway_path, s, duration)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(r is None for r in results):
        raise RuntimeError("a side-by-side load did not finish")
    return results  # type: ignore[return-value]
