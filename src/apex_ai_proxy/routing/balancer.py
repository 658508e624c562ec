"""Order a route's candidates: which (target, key) to try first, second, …

Targets are ordered by the route's strategy; within a target its keys rotate, so a provider's
other keys are tried before moving to the next provider. Keys cooling down are left out; the
targets of a degraded endpoint (too many recent 5xx or timeouts) go after every other target,
in the same strategy order, and are never left out: a route whose every endpoint is degraded is
still tried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from apex_ai_proxy.health import HealthState
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.routing.router import Route


class Balancer:
    def __init__(self, health: HealthState) -> None:
        self.health = health
        self._counters: dict[int, int] = {}  # round-robin position per route / target

    def _next(self, obj: object) -> int:
        ident = id(obj)
        value = self._counters.get(ident, 0)
        self._counters[ident] = value + 1
        return value

    def order_targets(self, route: Route) -> list[Target]:
        targets = route.targets
        if len(targets) == 1:
            return targets
        strategy = route.strategy
        if strategy == "round-robin":
            start = self._next(route) % len(targets)
            return targets[start:] + targets[:start]
        if strategy == "least-busy":
            return sorted(targets, key=self._in_flight)
        if strategy == "latency":
            return self._power_of_two(targets)
        return _weighted_order(targets)

    def _in_flight(self, target: Target) -> int:
        return sum(self.health.unit(k.name).in_flight for k in target.keys)

    def _ttfb(self, target: Target) -> float:
        # Unmeasured targets look fast so that each gets tried and measured.
        values = [self.health.unit(k.name).ewma_ttfb for k in target.keys]
        measured = [v for v in values if v is not None]
        return min(measured) if measured else 0.0

    def _power_of_two(self, targets: list[Target]) -> list[Target]:
        first, second = random.sample(targets, 2)
        best = first if self._ttfb(first) <= self._ttfb(second) else second
        rest = sorted((t for t in targets if t is not best), key=self._ttfb)
        return [best, *rest]

    def candidates(self, route: Route) -> Iterator[tuple[Target, ApiKey]]:
        """Every (target, key) that is not cooling down, best first (degraded endpoints last)."""
        now = time.monotonic()
        available = self.health.is_available
        for target in self.health.degraded_last(self.order_targets(route), Target.endpoint, now):
            keys = target.keys
            if len(keys) > 1:
                start = self._next(target) % len(keys)
                keys = keys[start:] + keys[:start]
            for key in keys:
                if available(key.name, now):
                    yield target, key


def _weighted_order(targets: list[Target]) -> list[Target]:
    """Weighted random order without replacement (each draw proportional to weight)."""
    scored = []
    for target in targets:
        weight = target.weight
        # random() ** (1/w): larger weights tend to larger scores (Efraimidis–Spirakis).
        score = random.random() ** (1.0 / weight) if weight > 0 else -1.0
        scored.append((score, target))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [target for _, target in scored]
