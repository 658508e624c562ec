"""Health of every (provider, key) unit: cooldowns, in-flight counts, latency.

Kept in process. Each worker process learns on its own; a shared (Redis) backend can implement
the same small surface later without the dispatcher changing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class UnitHealth:
    cooldown_until: float = 0.0
    failures: int = 0  # consecutive; drives the exponential cooldown, reset on success
    in_flight: int = 0
    ewma_ttfb: float | None = None  # seconds
    rate_limited: bool = False  # the current cooldown came from a 429


class HealthState:
    EWMA_ALPHA = 0.3

    def __init__(
        self, cooldown_base_s: float, cooldown_max_s: float, auth_cooldown_s: float
    ) -> None:
        self._units: dict[str, UnitHealth] = {}
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = cooldown_max_s
        self.auth_cooldown_s = auth_cooldown_s

    def unit(self, key_name: str) -> UnitHealth:
        unit = self._units.get(key_name)
        if unit is None:
            unit = self._units[key_name] = UnitHealth()
        return unit

    def is_available(self, key_name: str, now: float) -> bool:
        unit = self._units.get(key_name)
        return unit is None or unit.cooldown_until <= now

    def on_success(self, key_name: str, ttfb: float) -> None:
        unit = self.unit(key_name)
        unit.failures = 0
        unit.cooldown_until = 0.0
        unit.rate_limited = False
        if unit.ewma_ttfb is None:
            unit.ewma_ttfb = ttfb
        else:
            unit.ewma_ttfb += self.EWMA_ALPHA * (ttfb - unit.ewma_ttfb)

    def on_failure(
        self,
        key_name: str,
        retry_after: float | None = None,
        rate_limited: bool = False,
        auth: bool = False,
    ) -> float:
        """Cool the unit down; returns the cooldown in seconds."""
        unit = self.unit(key_name)
        unit.failures += 1
        if auth:
            cooldown = self.auth_cooldown_s
        elif retry_after is not None:
            cooldown = min(max(retry_after, 0.0), self.cooldown_max_s * 12)
        else:
            cooldown = min(self.cooldown_base_s * 2 ** (unit.failures - 1), self.cooldown_max_s)
        unit.cooldown_until = time.monotonic() + cooldown
        unit.rate_limited = rate_limited
        return cooldown

    def cooling_by_provider(self) -> dict[str, int]:
        """Keys cooling down per provider (key names are "provider#i" or "provider@alias[i]#j")."""
        now = time.monotonic()
        counts: dict[str, int] = {}
        for key_name, unit in self._units.items():
            provider = key_name.split("#", 1)[0].split("@", 1)[0]
            counts[provider] = counts.get(provider, 0) + (unit.cooldown_until > now)
        return counts
