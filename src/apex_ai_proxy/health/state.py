"""Health of every unit as one process sees it, and the cooldown policy.

Units are keys ("provider#0") and provider endpoints ("provider https://host/v1", one for all
the provider's keys). Which failure counts against what:

- 429: the key is rate limited (Retry-After honoured, else the exponential cooldown);
- 401/403: the key is out for `auth_cooldown_s`;
- a fault (5xx, 529, 408, timeout, connection error, an answer that is not its API's): counted
  in the fault windows of the key and of its endpoint (faults.py); one alone takes nothing out.
  Too many of the endpoint's degrade it (tried after the healthy ones), too many of the key's
  take the key out for a while (state `degraded`).

What a unit's health is made of, and where each part lives:

- cooldown_until, failures, rate_limited, degraded, the fault window: the unit's slot in a
  `CooldownTable`. Shared by every worker of one `serve --workers N` (the table is then in
  memory shared by fork); private memory for a single process.
- in_flight, ewma_ttfb: this process's own, plain attributes. They are balancing hints about the
  traffic this process sends (least-busy, latency); another worker's in-flight requests or its
  view of latency would not make this process's choice better, and sharing them would put a
  write to shared memory on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from apex_ai_proxy.health import faults
from apex_ai_proxy.health.config import (
    DEFAULT_ENDPOINT_FAULTS,
    DEFAULT_KEY_FAULTS,
    FaultWindowConfig,
)
from apex_ai_proxy.health.names import is_endpoint
from apex_ai_proxy.health.table import SLOT_SIZE, CooldownTable, Slot

T = TypeVar("T")


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

    @property
    def degraded(self) -> bool:  # the current cooldown came from repeated faults
        return bool(self._slot.degraded[0])

    @degraded.setter
    def degraded(self, value: bool) -> None:
        self._slot.degraded[0] = 1 if value else 0

    def state(self, now: float) -> str:
        """As people see it: ok, rate_limited, degraded or cooling_down (now: monotonic)."""
        if self.cooldown_until <= now:
            return "ok"
        if self.rate_limited:
            return "rate_limited"
        return "degraded" if self.degraded else "cooling_down"


class HealthState:
    EWMA_ALPHA = 0.3
    RETRY_AFTER_CAP = 12  # a Retry-After counts up to this many times cooldown_max_s

    def __init__(
        self,
        cooldown_base_s: float,
        cooldown_max_s: float,
        auth_cooldown_s: float,
        table: CooldownTable | None = None,
        *,
        key_faults: FaultWindowConfig = DEFAULT_KEY_FAULTS,
        endpoint_faults: FaultWindowConfig = DEFAULT_ENDPOINT_FAULTS,
    ) -> None:
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = cooldown_max_s
        self.auth_cooldown_s = auth_cooldown_s
        self.key_faults = key_faults
        self.endpoint_faults = endpoint_faults
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

    def carry_over(
        self, old: HealthState, same: Mapping[str, str | None], endpoints: Iterable[str] = ()
    ) -> list[str]:
        """After a config reload: `same` maps every unit of the new config to the name the same
        key had in `old` (None: a new key); `endpoints` are the new config's endpoints, the same
        endpoint being the same name. A kept key keeps its UnitHealth object — cooldown,
        failures, in-flight count, latency — so requests still in flight on `old` count on it
        too; a key gone from the config is cleared and forgotten. Both states share one table.

        Returns the new units without a slot in the table: in a shared table (workers) their
        cooldowns stay within this process until a restart (the table is fixed at fork)."""
        same = {**same, **{name: name for name in endpoints}}
        kept = {name: old._units[was] for name, was in same.items() if was in old._units}
        held = {unit.home for unit in kept.values()}
        kept_ids = {id(unit) for unit in kept.values()}
        for unit in old._units.values():
            if id(unit) not in kept_ids:  # a removed key's state goes away with it
                unit.failures, unit.rate_limited, unit.cooldown_until = 0, False, 0.0
                unit.degraded = False
                faults.clear_window(unit._slot)
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

    def on_success(self, key_name: str, ttfb: float, endpoint: str | None = None) -> None:
        """The key answered (through `endpoint`): forget its cooldown, outweigh recent faults,
        and a degraded endpoint is healthy again."""
        unit = self.unit(key_name)
        # Only a unit that has something to forget is written: no store to shared memory on the
        # ordinary successful request. Every cooldown sets cooldown_until, so it alone tells;
        # a fault sets last_fault.
        slot = unit._slot
        if slot.until[0]:
            self._clear(key_name, unit)
        if slot.last_fault[0]:
            faults.note_success(slot, self.key_faults, time.monotonic())
        if endpoint is not None:
            self._endpoint_success(endpoint)
        if unit.ewma_ttfb is None:
            unit.ewma_ttfb = ttfb
        else:
            unit.ewma_ttfb += self.EWMA_ALPHA * (ttfb - unit.ewma_ttfb)

    def _clear(self, name: str, unit: UnitHealth) -> None:
        unit.failures = 0
        unit.rate_limited = False
        unit.degraded = False
        unit.cooldown_until = 0.0
        if self.on_change is not None:
            self.on_change(name, unit)

    def _endpoint_success(self, endpoint: str) -> None:
        unit = self._units.get(endpoint)
        if unit is None:
            return  # not in the table and never faulted: nothing to count or clear
        slot = unit._slot
        if slot.until[0]:  # degraded: a success clears it, and its window counts afresh
            faults.clear_window(slot)
            self._clear(endpoint, unit)
        elif slot.last_fault[0]:
            faults.note_success(slot, self.endpoint_faults, time.monotonic())

    def on_fault(self, key_name: str, endpoint: str) -> str:
        """An upstream fault (5xx, 529, 408, timeout, connection error, an answer that is not
        its API's) on the key, through `endpoint`: counted in both windows, and whichever now
        holds too many is degraded. Returns the key's state after it ("ok" or "degraded")."""
        now = time.monotonic()
        unit = self.unit(endpoint)
        if faults.note_fault(unit._slot, self.endpoint_faults, now) and unit.cooldown_until <= now:
            self._degrade(endpoint, unit, self.endpoint_faults, now)
        unit = self.unit(key_name)
        if not faults.note_fault(unit._slot, self.key_faults, now):
            return "ok"
        if unit.cooldown_until <= now:
            self._degrade(key_name, unit, self.key_faults, now)
            faults.clear_window(unit._slot)  # back from its cooldown, it counts afresh
        return "degraded"

    def _degrade(self, name: str, unit: UnitHealth, window: FaultWindowConfig, now: float) -> None:
        cooldown = faults.degraded_cooldown(unit._slot, window, self.cooldown_max_s, now)
        unit.rate_limited = False
        unit.degraded = True
        unit.cooldown_until = now + cooldown  # last: see on_failure
        if self.on_change is not None:
            self.on_change(name, unit)

    def endpoint_degraded(self, endpoint: str, now: float) -> bool:
        """Whether `endpoint`'s candidates go after the healthy ones' (now: monotonic)."""
        until = self._until.get(endpoint)
        return until is not None and until[0] > now

    def degraded_last(self, items: list[T], endpoint_of: Callable[[T], str], now: float) -> list[T]:
        """`items` with those whose endpoint is degraded after the others, each part in its
        order; `items` itself when none is (the usual case: one look per item)."""
        degraded = self.endpoint_degraded
        for item in items:
            if degraded(endpoint_of(item), now):  # seldom: then sort them out (stable)
                flags = [degraded(endpoint_of(i), now) for i in items]
                return [i for i, d in zip(items, flags, strict=True) if not d] + [
                    i for i, d in zip(items, flags, strict=True) if d
                ]
        return items

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
        unit.degraded = False
        unit.cooldown_until = time.monotonic() + cooldown
        if self.on_change is not None:
            self.on_change(key_name, unit)
        return cooldown

    def cooling_by_provider(self) -> dict[str, int]:
        """Keys cooling down per provider (key names are "provider#i" or "provider@alias[i]#j")."""
        now = time.monotonic()
        counts: dict[str, int] = {}
        for key_name, unit in self._units.items():
            if is_endpoint(key_name):
                continue
            provider = key_name.split("#", 1)[0].split("@", 1)[0]
            counts[provider] = counts.get(provider, 0) + (unit.cooldown_until > now)
        return counts

    def degraded_by_provider(self) -> tuple[dict[str, int], dict[str, int]]:
        """(keys, endpoints) degraded per provider, every provider with a unit listed."""
        now = time.monotonic()
        keys: dict[str, int] = {}
        endpoints: dict[str, int] = {}
        for name, unit in self._units.items():
            if is_endpoint(name):
                counts, provider = endpoints, name.rpartition(" ")[0]
            else:
                counts, provider = keys, name.split("#", 1)[0].split("@", 1)[0]
            counts[provider] = counts.get(provider, 0) + (
                unit.degraded and unit.cooldown_until > now
            )
        return keys, endpoints
