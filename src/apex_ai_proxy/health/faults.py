"""Fault windows: when do upstream faults (5xx, 529, timeouts, connection errors) degrade a unit.

A fault says the provider endpoint is in trouble, not that the key is out of quota, so one
alone changes nothing: a unit is degraded when `failures` of its last `attempts` attempts
failed, all within `window_s` (FaultWindowConfig). Keys and endpoints each have such a window:

    endpoint degraded  its candidates are tried after the healthy endpoints', never skipped;
                       a success through it clears it
    key degraded       out for a cooldown, doubled when it is degraded again within `window_s`
                       of the last cooldown's end

The window lives in the unit's table slot (table.py: a ring of the last attempts, shared by the
workers of `serve --workers N`). Successes are written to it only while it holds a fault that
still counts: an attempt older than every counting fault cannot change a count, so the ordinary
successful request writes nothing to shared memory.
"""

from __future__ import annotations

from apex_ai_proxy.health.config import FaultWindowConfig
from apex_ai_proxy.health.table import Slot


def note_fault(slot: Slot, window: FaultWindowConfig, now: float) -> bool:
    """Count a fault; True when the unit's last attempts now hold enough to degrade it."""
    _push(slot, window, now)
    slot.last_fault[0] = now
    return faults_in_window(slot, window, now) >= window.failures


def note_success(slot: Slot, window: FaultWindowConfig, now: float) -> None:
    """Count a success, if a fault that still counts is there for it to outweigh."""
    if now - slot.last_fault[0] > window.window_s:
        slot.last_fault[0] = 0.0  # nothing left to count: successes skip the window again
        return
    _push(slot, window, -now)


def faults_in_window(slot: Slot, window: FaultWindowConfig, now: float) -> int:
    """Faults among the last `attempts` attempts, within `window_s` of `now`."""
    ring = slot.ring
    size = window.attempts
    oldest = now - window.window_s
    return sum(1 for i in range(size) if ring[i] > 0.0 and ring[i] >= oldest)


def degraded_cooldown(slot: Slot, window: FaultWindowConfig, longest: float, now: float) -> float:
    """The cooldown of a unit degraded at `now`: `cooldown_s`, doubled for each degradation
    that follows the last one's end within `window_s`; at most `longest` (retry.cooldown_max_s,
    the longest any failure without Retry-After keeps a unit out)."""
    streak = slot.streak[0] + 1 if now - slot.streak_end[0] <= window.window_s else 1
    cooldown = min(window.cooldown_s * 2.0 ** min(streak - 1, 64), longest)
    slot.streak[0] = min(streak, 0xFFFFFFFF)
    slot.streak_end[0] = now + cooldown
    return cooldown


def clear_window(slot: Slot) -> None:
    """Forget the unit's recent attempts (a degraded key starts counting afresh when back)."""
    ring = slot.ring
    for i in range(len(ring)):
        ring[i] = 0.0
    slot.last_fault[0] = 0.0


def _push(slot: Slot, window: FaultWindowConfig, entry: float) -> None:
    # Workers may push at once: one may overwrite the other's entry (last writer wins), as two
    # requests of one process racing on a cooldown already do.
    position = slot.next[0] % window.attempts
    slot.ring[position] = entry
    slot.next[0] = (position + 1) % window.attempts
