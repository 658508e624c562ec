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
    (`ctx.key_hold`), i.e. for a virtual key with limits; {} for anything else."""
    hold = ctx.key_hold
    entry = getattr(ctx.token_name, "entry", None)
    if not isinstance(hold, Reservation) or not isinstance(entry, VirtualKey):
        return {}
    now = time.time()
    headers: dict[str, str] = {}
    minute_reset = _seconds(bucket_frees_at(hold.bucket) - now)  # this request stops counting
    if entry.rpm:
        _window(headers, "requests", entry.rpm, hold.headroom, minute_reset)
    if entry.tpm:
        _window(headers, "tokens", entry.tpm, hold.headroom, minute_reset)
    if entry.rpd:
        day_reset = _seconds(day_window(now, None)[1] - now)  # the ledger's day: UTC
        _window(headers, "requests-day", entry.rpd, hold.headroom, day_reset)
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


def _window(headers: dict[str, str], suffix: str, limit: int, left: float, reset: str) -> None:
    headers[f"x-ratelimit-limit-{suffix}"] = str(limit)
    headers[f"x-ratelimit-remaining-{suffix}"] = str(max(int(left * limit + _ROUNDING), 0))
    headers[f"x-ratelimit-reset-{suffix}"] = reset


def _seconds(delta: float) -> str:
    return f"{max(math.ceil(delta), 1)}s"
