"""`x-ratelimit-*` of a virtual key with limits, on its answers and on its 429s.

    limit_headers(ctx)          what is left after this request's reservation: the answer's
                                headers (whole or streamed), from the reservation already made,
                                no round trip
    refusal_headers(entry, …)   the refused window at 0, resetting in the refusal's wait

Names follow OpenAI's: `-requests` (rpm), `-tokens` (tpm), and `-requests-day` (rpd) beside
them; resets are `<n>s`. The ledger's reservation carries one number, the share left of the
key's tightest window (`Reservation.headroom`), so `remaining` is exact for that window and a
lower bound for the others (a client pacing itself on them stays under every limit).
"""

from __future__ import annotations

import math
import time
from typing import Any

from apex_ai_proxy.keypool import Reservation
from apex_ai_proxy.keypool.limits import bucket_frees_at, day_window
from apex_ai_proxy.virtualkeys.model import VirtualKey

# The remaining count is `headroom × limit`, a float: this keeps 2.9999999 a 3.
_ROUNDING = 1e-6

_HEADER_OF = {  # refusal reason → (header suffix, the key's field)
    "rpm": ("requests", "rpm"),
    "rpd": ("requests-day", "rpd"),
    "tpm": ("tokens", "tpm"),
    "max_parallel": ("parallel", "max_parallel"),
}


def limit_headers(ctx: Any) -> dict[str, str]:
    """The key's windows after this request: called only when the request holds a reservation
    (`ctx.key_hold`), i.e. for a virtual key with limits; {} for a name without windows."""
    windows = getattr(ctx.token_name, "windows", None)  # guard.VirtualName's
    return {} if windows is None else windows.headers(ctx.key_hold)


class KeyWindows:
    """A key's limited windows as headers: names and limits worked out once per key (kept on
    guard.VirtualName), so an answer only fills in what is left and when it resets."""

    __slots__ = ("_template", "_minute", "_day")

    def __init__(self, entry: VirtualKey) -> None:
        self._template: dict[str, str] = {}  # every header in the order shown, limits filled in
        self._minute: list[tuple[str, str, int]] = []  # (remaining, reset, limit) per window
        self._day: tuple[str, str, int] | None = None
        for suffix, limit in (("requests", entry.rpm), ("tokens", entry.tpm)):
            if limit:
                self._minute.append(self._add(suffix, limit))
        if entry.rpd:
            self._day = self._add("requests-day", entry.rpd)

    def _add(self, suffix: str, limit: int) -> tuple[str, str, int]:
        remaining, reset = f"x-ratelimit-remaining-{suffix}", f"x-ratelimit-reset-{suffix}"
        self._template[f"x-ratelimit-limit-{suffix}"] = str(limit)
        self._template[remaining] = ""  # both filled in per answer
        self._template[reset] = ""
        return remaining, reset, limit

    def headers(self, hold: Reservation) -> dict[str, str]:
        headers = self._template.copy()
        now = time.time()
        # Clamped once (a comparison: max() parses keyword arguments on every call), so that
        # no count below can be negative.
        left = hold.headroom if hold.headroom > 0.0 else 0.0
        # When this request stops counting: ceil(frees_at - now) is this, frees_at being whole.
        seconds = bucket_frees_at(hold.bucket) - int(now)
        reset = f"{seconds}s" if seconds > 1 else "1s"
        for remaining_name, reset_name, limit in self._minute:
            headers[remaining_name] = str(int(left * limit + _ROUNDING))
            headers[reset_name] = reset
        if self._day is not None:
            remaining_name, reset_name, limit = self._day
            headers[remaining_name] = str(int(left * limit + _ROUNDING))
            headers[reset_name] = _seconds(day_window(now, None)[1] - now)  # the ledger's: UTC
        return headers


def refusal_headers(entry: VirtualKey, reason: str, wait: int) -> dict[str, str]:
    """Retry-After and the refused window's headers (a 429 of the key's own limits)."""
    headers = {"retry-after": str(wait)}
    suffix, field = _HEADER_OF.get(reason, ("requests", "rpm"))
    limit = getattr(entry, field, None)
    if limit is not None:
        headers[f"x-ratelimit-limit-{suffix}"] = str(limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = "0"
        headers[f"x-ratelimit-reset-{suffix}"] = f"{wait}s"
    return headers


def _seconds(delta: float) -> str:
    seconds = math.ceil(delta)
    return f"{seconds if seconds > 1 else 1}s"
