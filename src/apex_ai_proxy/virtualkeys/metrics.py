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
        self.counters(name).observe(cost)

    def counters(self, name: str) -> KeyCounters:
        """The key's two series, to keep (guard.VirtualName): `.labels()` on every request
        costs more than the count itself."""
        label = name if self.per_key else _ALL
        return KeyCounters(self._requests.labels(label), self._spend.labels(label))


class KeyCounters:
    """One key's series (or the shared "_all" ones)."""

    __slots__ = ("_requests", "_spend")

    def __init__(self, requests: Any, spend: Any) -> None:
        self._requests = requests
        self._spend = spend

    def observe(self, cost: float) -> None:
        self._requests.inc()
        if cost > 0:
            self._spend.inc(cost)
