"""Requests and spend per virtual key name on /metrics (`virtual_keys.metrics_per_key`).

One series per key name: bounded by the number of keys, which an operator with very many turns
off (`metrics_per_key: false`: one series labelled "_all"). The counters are made on first use,
not at import, so that a worker made by `serve --workers` has its multiprocess directory set.

A request is counted in plain numbers (KeyCounters, kept per key on guard.VirtualName): a
Counter's `inc()` takes a lock through four calls, several times what the rest of a key's
request costs here. They reach the series as request records do (telemetry/metrics.py): before
this process renders /metrics, and every PUBLISH_S (what another worker of `serve --workers`
renders: up to PUBLISH_S behind).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from apex_ai_proxy.telemetry.metrics import observe_before_render

_ALL = "_all"  # the label when per-key series are off
PUBLISH_S = 1.0
_counters: dict[str, Any] = {}


def _counter(name: str, doc: str) -> Any:
    if name not in _counters:
        from prometheus_client import Counter

        _counters[name] = Counter(name, doc, ["key"])
    return _counters[name]


class KeyCounters:
    """One key's counts not yet in its series (or the shared "_all" ones)."""

    __slots__ = ("requests", "spend", "_requests", "_spend")

    def __init__(self, requests: Any, spend: Any) -> None:
        self.requests = 0
        self.spend = 0.0
        self._requests = requests
        self._spend = spend

    def observe(self, cost: float) -> None:
        self.requests += 1
        if cost > 0:
            self.spend += cost

    def publish(self) -> None:
        requests, spend = self.requests, self.spend
        self.requests, self.spend = 0, 0.0
        if requests:
            self._requests.inc(requests)
        if spend > 0:
            self._spend.inc(spend)


class KeyMetrics:
    def __init__(self, per_key: bool) -> None:
        self.per_key = per_key
        self._requests = _counter(
            "apex_virtual_key_requests_total", "Requests served under a virtual key"
        )
        self._spend = _counter(
            "apex_virtual_key_spend_usd_total", "Cost estimate charged to virtual keys (USD)"
        )
        self._by_label: dict[str, KeyCounters] = {}  # bounded by the key names
        self._loop_task: asyncio.Task | None = None
        observe_before_render(self)

    def counters(self, name: str) -> KeyCounters:
        """The key's counts, to keep (guard.VirtualName): no `.labels()` per request."""
        label = name if self.per_key else _ALL
        found = self._by_label.get(label)
        if found is None:
            found = self._by_label[label] = KeyCounters(
                self._requests.labels(label), self._spend.labels(label)
            )
        return found

    def observe_pending(self) -> None:
        """Everything counted so far into the series (telemetry.metrics calls it before it
        renders /metrics)."""
        for counters in self._by_label.values():
            counters.publish()

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_S)
            self.observe_pending()

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self.observe_pending()
