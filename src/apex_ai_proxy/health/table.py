"""The cooldown table: one fixed-size slot per (provider, key) unit, in one buffer.

The buffer is private memory (a bytearray) for a single process, or an anonymous shared mapping
(`mmap.mmap(-1, size)`, MAP_SHARED) created by `serve --workers N` before it forks, so that every
worker reads and writes the same slots: a 429 seen by one worker keeps the others off that key.

Slot layout (SLOT_SIZE bytes, native byte order, each field naturally aligned)::

    offset 0   double   cooldown_until   time.monotonic() seconds; 0.0: never cooled down
    offset 8   uint32   failures         consecutive failures (drives the exponential cooldown)
    offset 12  uint8    rate_limited     1: the current cooldown came from a 429
    offset 13  uint8    degraded         1: the current cooldown came from repeated faults
    offset 14  2 bytes  padding
    offset 16  double   last_fault       time.monotonic() of the latest fault; 0.0: none kept
    offset 24  double   streak_end       when the last degraded cooldown ended (or ends)
    offset 32  uint32   streak           degraded cooldowns in a row (each one doubles)
    offset 36  uint32   next             the fault ring's next position
    offset 40  double[MAX_FAULT_WINDOW]  the fault ring: one entry per recent attempt, its
                                         time.monotonic(), positive for a fault, negative for a
                                         success, 0.0 empty (health/faults.py)

Units are keys ("provider#0") and provider endpoints ("provider https://host/v1",
providers.base.endpoint_name): an endpoint's cooldown_until is the end of its degraded time.

CLOCK_MONOTONIC (time.monotonic) is one clock for the whole machine on Linux, so a value written
by one process compares correctly with `time.monotonic()` in another.

No lock, no round trip. Each field is read and written through a memoryview cast to its C type,
which CPython copies with one fixed-size memcpy of an aligned value: a reader sees a field's old
or new value, never a mix of bytes. A reader may for an instant see one field of a write and not
yet the next; each field is meaningful on its own, so that is harmless. Concurrent writers are
last-writer-wins: two workers failing the same key at once may both count failure n+1, and a
success in one worker clears a cooldown another worker has just set — exactly what two requests
in one process already do to each other.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from apex_ai_proxy.health.config import MAX_FAULT_WINDOW
from apex_ai_proxy.health.names import endpoint_name

if TYPE_CHECKING:
    from apex_ai_proxy.routing import Router

RING_OFFSET = 40
SLOT_SIZE = RING_OFFSET + 8 * MAX_FAULT_WINDOW


class Slot:
    """Typed views of one unit's fields: `until[0]`, `failures[0]`, … `ring[i]`."""

    __slots__ = (
        "until",
        "failures",
        "rate_limited",
        "degraded",
        "last_fault",
        "streak_end",
        "streak",
        "next",
        "ring",
    )

    def __init__(self, view: memoryview) -> None:
        self.until = view[0:8].cast("d")
        self.failures = view[8:12].cast("I")
        self.rate_limited = view[12:13].cast("B")
        self.degraded = view[13:14].cast("B")
        self.last_fault = view[16:24].cast("d")
        self.streak_end = view[24:32].cast("d")
        self.streak = view[32:36].cast("I")
        self.next = view[36:40].cast("I")
        self.ring = view[RING_OFFSET:SLOT_SIZE].cast("d")


class CooldownTable:
    """A slot per unit name, fixed at creation; `shared=True` puts them in memory shared by fork."""

    def __init__(self, names: Iterable[str], *, shared: bool = False) -> None:
        self.names = list(dict.fromkeys(names))
        self.shared = shared
        size = max(len(self.names), 1) * SLOT_SIZE
        # Both start zeroed: no cooldown, no failures.
        self._buffer: mmap.mmap | bytearray = mmap.mmap(-1, size) if shared else bytearray(size)
        self._index = {name: i for i, name in enumerate(self.names)}
        #: Names the processes sharing this table in changes published to other replicas.
        self.origin = os.urandom(8).hex()

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def slot(self, name: str) -> Slot:
        """The unit's slot; a name the table was not built with gets one of its own, private
        to this process (its cooldowns are then not shared)."""
        i = self._index.get(name)
        if i is None:
            return Slot(memoryview(bytearray(SLOT_SIZE)))
        start = i * SLOT_SIZE
        return Slot(memoryview(self._buffer)[start : start + SLOT_SIZE])


def unit_names(router: Router) -> list[str]:
    """Every unit a gateway built on `router` can send to, in a stable order: each provider's
    own keys (reachable as `model#provider` too) and the keys that model entries bring."""
    return list(_unit_secrets(router))


def endpoint_names(router: Router) -> list[str]:
    """Every provider endpoint (provider × base URL) a gateway built on `router` can send to:
    each provider's own and those of model entries with a base_url of their own."""
    names = [
        endpoint_name(name, adapter.base_url or "") for name, adapter in router.adapters.items()
    ]
    names += [t.endpoint() for route in router.routes.values() for t in route.targets]
    return list(dict.fromkeys(names))


def table_names(router: Router) -> list[str]:
    """The units of a cooldown table for `router`: its keys, then its endpoints."""
    return unit_names(router) + endpoint_names(router)


def same_units(old: Router, new: Router) -> dict[str, str | None]:
    """Every unit of `new`, with the name the same key has in `old` (None: a new key). The same
    key is the same scope (provider, or provider@model entry) and the same secret, wherever it
    stands in the list: removing a key from the middle renames the ones after it."""
    before = {identity: name for name, identity in _unit_secrets(old).items()}
    return {name: before.get(identity) for name, identity in _unit_secrets(new).items()}


def _unit_secrets(router: Router) -> dict[str, tuple[str, str]]:
    """unit name → (scope, secret); the secret only to tell keys apart, never shown."""
    keys = [
        key
        for adapter in router.adapters.values()
        for key in adapter.keys_from(adapter.config.keys())
    ]
    keys += [
        key for route in router.routes.values() for target in route.targets for key in target.keys
    ]
    units: dict[str, tuple[str, str]] = {}
    for key in keys:
        units.setdefault(key.name, (key.name.rpartition("#")[0], key.secret))
    return units
