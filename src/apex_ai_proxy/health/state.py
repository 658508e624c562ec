"""Health of every (provider, key) unit as one process sees it, and the cooldown policy.

What a unit's health is made of, and where each part lives:

- cooldown_until, failures, rate_limited: the unit's slot in a `CooldownTable`. Shared by every
  worker of one `serve --workers N` (the table is then in memory shared by fork); private memory
  for a single process.
- in_flight, ewma_ttfb: this process's own, plain attributes. They are balancing hints about the
  traffic this process sends (least-busy, latency); another worker's in-flight requests or its
  view of latency would not make this process's choice better, and sharing them would put a
  write to shared memory on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from apex_ai_proxy.health.table import SLOT_SIZE, CooldownTable, Slot


class UnitHealth:
    """One unit: the cooldown fields read and write its table slot, the hints are attributes."""

    __slots__ = ("in_flight", "ewma_ttfb", "_slot", "home")

    def __init__(self, slot: Slot, home: str | None = None) -> None:
        self.in_flight = 0
        self.ewma_ttfb: float | None = None  # seconds
        self._slot = slot
        #: The table name whose slot this is (None: a private slot). A reload may rename a unit
        #: (its key moved in the list); the unit keeps its slot, so no other unit may take it.
        self.home = home

    @property
    def cooldown_until(self) -> float:  # time.monotonic() seconds
        return self._slot.until[0]

    @cooldown_until.setter
    def cooldown_until(self, value: float) -> None:
        self._slot.until[0] = value

    @property
    def failures(self) -> int:  # consecutive; drives the exponential cooldown, reset on success
        return self._slot.failures[0]

    @failures.setter
    def failures(self, value: int) -> None:
        self._slot.failures[0] = min(value, 0xFFFFFFFF)

    @property
    def rate_limited(self) -> bool:  # the current cooldown came from a 429
        return bool(self._slot.rate_limited[0])

    @rate_limited.setter
    def rate_limited(self, value: bool) -> None:
        self._slot.rate_limited[0] = 1 if value else 0


class HealthState:
    EWMA_ALPHA = 0.3
    RETRY_AFTER_CAP = 12  # a Retry-After counts up to this many times cooldown_max_s

    def __init__(
        self,
        cooldown_base_s: float,
        cooldown_max_s: float,
        auth_cooldown_s: float,
        table: CooldownTable | None = None,
    ) -> None:
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = cooldown_max_s
        self.auth_cooldown_s = auth_cooldown_s
        self.table = table if table is not None else CooldownTable(())
        self._units: dict[str, UnitHealth] = {}
        # is_available runs per candidate per request: one dict lookup and one aligned read.
        self._until: dict[str, memoryview] = {}
        #: Called as (key_name, unit) after a cooldown is set or cleared: a shared backend's
        #: hook (see redis_sync.py). It must return at once: it runs on the request path.
        self.on_change: Callable[[str, UnitHealth], None] | None = None
        for name in self.table.names:
            self.unit(name)

    @property
    def longest_cooldown_s(self) -> float:
        return max(self.auth_cooldown_s, self.cooldown_max_s * self.RETRY_AFTER_CAP)

    def __contains__(self, key_name: str) -> bool:
        return key_name in self._units

    def unit(self, key_name: str) -> UnitHealth:
        unit = self._units.get(key_name)
        if unit is None:
            slot = self.table.slot(key_name)
            home = key_name if key_name in self.table else None
            unit = self._units[key_name] = UnitHealth(slot, home)
            self._until[key_name] = slot.until
        return unit

    def carry_over(self, old: HealthState, same: Mapping[str, str | None]) -> list[str]:
        """After a config reload: `same` maps every unit of the new config to the name the same
        key had in `old` (None: a new key). A kept key keeps its UnitHealth object — cooldown,
        failures, in-flight count, latency — so requests still in flight on `old` count on it
        too; a key gone from the config is cleared and forgotten. Both states share one table.

        Returns the new units without a slot in the table: in a shared table (workers) their
        cooldowns stay within this process until a restart (the table is fixed at fork)."""
        kept = {name: old._units[was] for name, was in same.items() if was in old._units}
        held = {unit.home for unit in kept.values()}
        kept_ids = {id(unit) for unit in kept.values()}
        for unit in old._units.values():
            if id(unit) not in kept_ids:  # a removed key's state goes away with it
                unit.failures, unit.rate_limited, unit.cooldown_until = 0, False, 0.0
        self._units.clear()
        self._until.clear()
        unshared = []
        for name in same:
            unit = kept.get(name)
            if unit is None:
                if name in self.table and name not in held:
                    unit = UnitHealth(self.table.slot(name), name)
                else:
                    unit = UnitHealth(Slot(memoryview(bytearray(SLOT_SIZE))))
                    unshared.append(name)
            self._units[name] = unit
            self._until[name] = unit._slot.until
        return unshared

    def is_available(self, key_name: str, now: float) -> bool:
        until = self._until.get(key_name)
        return until is None or until[0] <= now

    def on_success(self, key_name: str, ttfb: float) -> None:
        unit = self.unit(key_name)
        # Only a unit that has something to forget is written: no store to shared memory on the
        # ordinary successful request. Every failure sets cooldown_until, so it alone tells.
        if unit._slot.until[0]:
            unit.failures = 0
            unit.rate_limited = False
            unit.cooldown_until = 0.0
            if self.on_change is not None:
                self.on_change(key_name, unit)
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
        failures = unit.failures + 1
        if auth:
            cooldown = self.auth_cooldown_s
        elif retry_after is not None:
            cooldown = min(max(retry_after, 0.0), self.cooldown_max_s * self.RETRY_AFTER_CAP)
        else:
            # The exponent is bounded: 2**1024 no longer fits a float, and a dead key keeps failing.
            backoff = self.cooldown_base_s * 2.0 ** min(failures - 1, 64)
            cooldown = min(backoff, self.cooldown_max_s)
        # cooldown_until last: where stores become visible in program order (x86-64), a worker
        # that sees the new cooldown also sees the flags that go with it.
        unit.failures = failures
        unit.rate_limited = rate_limited
        unit.cooldown_until = time.monotonic() + cooldown
        if self.on_change is not None:
            self.on_change(key_name, unit)
        return cooldown

    def cooling_by_provider(self) -> dict[str, int]:
        """Keys cooling down per provider (key names are "provider#i" or "provider@alias[i]#j")."""
        now = time.monotonic()
        counts: dict[str, int] = {}
        for key_name, unit in self._units.items():
            provider = key_name.split("#", 1)[0].split("@", 1)[0]
            counts[provider] = counts.get(provider, 0) + (unit.cooldown_until > now)
        return counts
