"""Requests and spend per virtual key name on /metrics (`virtual_keys.metrics_per_key`).

One series per key name: bounded by the number of keys, which an operator with very many turns
off (`metrics_per_key: false`: one series labelled "_all"). The counters are made on first use,
not at import, so that a worker made by `serve --workers` has its multiprocess directory set.
"""

from __future__ import annotations

from typing import Any

_ALL = "_all"  # the label when per-key series are off
_counters: dict[str, Any] = {}


def _counter(name: str, doc: str) -> Any:
    if name not in _counters:
        from prometheus_client import Counter

        _counters[name] = Counter(name, doc, ["key"])
    return _counters[name]


class KeyMetrics:
    def __init__(self, per_key: bool) -> None:
        self.per_key = per_key
        self._requests = _counter(
            "apex_virtual_key_requests_total", "Requests served under a virtual key"
        )
        self._spend = _counter(
            "apex_virtual_key_spend_usd_total", "Cost estimate charged to virtual keys (USD)"
        )

    def observe(self, name: str, cost: float) -> None:
        label = name if self.per_key else _ALL
        self._requests.labels(label).inc()
        if cost > 0:
            self._spend.labels(label).inc(cost)
