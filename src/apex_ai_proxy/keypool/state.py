"""The state of one key × model, and how an upstream answer moves it: a small pure machine.

    ok ──429──────────────▶ rate_limited(until)     back to ok once `until` passes
    ok ──429 per day──────▶ quota_exhausted(until)  until the key's daily reset
    ok ──401/403/bad key──▶ invalid(until)          quarantined; one probe per `invalid_probe_s`
    5xx, overload, timeouts ─▶ unchanged            the endpoint's trouble, not the key's
                                                    quota: HealthState counts them (health/faults.py,
                                                    its N-of-M `degraded`)
                                                    (the gateway counts faults in HealthState,
                                                    health/faults.py, not in the ledger)
    any ──success─────────▶ ok                      (a probe that works frees an invalid key)

`transition(status, signal, now, policy)` returns the next status; nothing here does I/O or
reads a clock, so both ledger backends and the tests drive the same rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from apex_ai_proxy.keypool.signals import Signal, Verdict


class KeyState(enum.Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    INVALID = "invalid"
    DEGRADED = "degraded"


@dataclass(frozen=True, slots=True)
class Policy:
    #: A 429 that says nothing about when: out for this long.
    rate_limit_default_s: float = 5.0
    #: An invalid key is tried again (one request) this often.
    invalid_probe_s: float = 3600.0


DEFAULT_POLICY = Policy()
RECENT = 10  # outcomes a status remembers


@dataclass(frozen=True, slots=True)
class KeyStatus:
    state: KeyState = KeyState.OK
    until: float = 0.0  # epoch seconds; for invalid: the next probe
    reason: str = ""
    #: The last outcomes, oldest first, each (epoch seconds, was an upstream fault).
    recent: tuple[tuple[float, bool], ...] = ()

    def available(self, now: float) -> bool:
        """Whether a request may be sent (an invalid key's probe included)."""
        return self.state is KeyState.OK or now >= self.until


OK_STATUS = KeyStatus()


def transition(
    status: KeyStatus, signal: Signal, now: float, policy: Policy = DEFAULT_POLICY
) -> KeyStatus:
    verdict = signal.verdict
    if verdict is Verdict.CLIENT_ERROR or verdict is Verdict.UPSTREAM_FAULT:
        return status  # the request's fault, or the endpoint's (HealthState's to count)
    recent = _remember(status.recent, now)
    if verdict is Verdict.OK:
        return KeyStatus(recent=recent)
    if verdict is Verdict.INVALID:
        return KeyStatus(KeyState.INVALID, now + policy.invalid_probe_s, signal.reason, recent)
    if verdict is Verdict.QUOTA_EXHAUSTED:
        until = signal.until if signal.until is not None else now + policy.rate_limit_default_s
        return KeyStatus(KeyState.QUOTA_EXHAUSTED, until, signal.reason, recent)
    # RATE_LIMITED; a longer cooldown already known (a daily quota) is not shortened by it
    until = signal.until if signal.until is not None else now + policy.rate_limit_default_s
    if status.state is not KeyState.OK and status.until > until:
        return replace(status, recent=recent)
    return KeyStatus(KeyState.RATE_LIMITED, until, signal.reason, recent)


def _remember(recent: tuple[tuple[float, bool], ...], now: float) -> tuple[tuple[float, bool], ...]:
    """The last outcomes, newest last (what the pool and console show of a key's history)."""
    return (*recent, (now, False))[-RECENT:]
