"""Window arithmetic shared by both ledger backends: minute buckets and the daily reset.

Minute windows (rpm, tpm) are counted in BUCKET_S-second buckets: a bucket counts while any
part of it lies in the last 60 seconds, so the count covers 60 to 60 + BUCKET_S seconds. That
errs on the safe side: no 60-second span, however placed, ever holds more than the limit, which
is what an upstream counting a sliding or a fixed minute enforces. Daily windows (rpd, tpd) are
calendar days in the key's time zone, reset at its midnight.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apex_ai_proxy.keypool.config import MAX_LIMIT, Limits

MINUTE_S = 60
BUCKET_S = 5
#: Buckets that can still count: the current one and the ones less than a minute old.
LIVE_BUCKETS = MINUTE_S // BUCKET_S + 1

DEFAULT_TIMEZONE = "UTC"


def bucket_of(now: float) -> int:
    return int(now // BUCKET_S)


def oldest_live_bucket(now: float) -> int:
    """Buckets from this one on hold requests of the last minute."""
    return bucket_of(now) - LIVE_BUCKETS + 1


def bucket_frees_at(bucket: int) -> float:
    """When a bucket's requests stop counting against a minute window."""
    return (bucket + 1) * BUCKET_S + MINUTE_S


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


#: The current day per time zone: day_window runs on every reservation, datetime math does not.
_current_day: dict[str, tuple[int, float]] = {}


def day_window(now: float, timezone: str | None) -> tuple[int, float]:
    """(start, end) of the calendar day holding `now` (epoch seconds) in `timezone`."""
    name = timezone or DEFAULT_TIMEZONE
    known = _current_day.get(name)
    if known is not None and known[0] <= now < known[1]:
        return known
    window = _compute_day(now, name)
    if len(_current_day) < 256:  # zones come from the config: a handful
        _current_day[name] = window
    return window


def _compute_day(now: float, timezone: str) -> tuple[int, float]:
    zone = _zone(timezone)
    local = datetime.fromtimestamp(now, zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Adding a day to the aware local midnight and normalising keeps DST days 23 or 25 hours.
    end = (start + timedelta(days=1)).replace(tzinfo=None)
    end_epoch = datetime.combine(end.date(), end.time(), zone).timestamp()
    return int(start.timestamp()), end_epoch


def next_daily_reset(now: float, timezone: str | None) -> float:
    return day_window(now, timezone)[1]


def clamp_tokens(tokens: int) -> int:
    """A token count the ledgers can add exactly (Lua numbers are doubles printed with 14
    significant digits). Comparisons, not min()/max(): every reservation and settlement comes
    here, and those builtins parse keyword arguments on each call."""
    tokens = int(tokens)
    return tokens if 0 <= tokens <= MAX_LIMIT else 0 if tokens < 0 else MAX_LIMIT


def limit_vector(limits: Limits) -> tuple[int, int, int, int, int]:
    """(rpm, rpd, tpm, tpd, max_parallel) with 0 for "not limited": the form the ledgers use."""
    return (
        limits.rpm or 0,
        limits.rpd or 0,
        limits.tpm or 0,
        limits.tpd or 0,
        limits.max_parallel or 0,
    )


#: What a ledger counted for a unit: (minute requests, minute tokens, day requests, day tokens,
#: parallel slots held), the order UnitView shows them in.
Counts = tuple[int, int, int, int, int]
#: A minute window's live buckets: (bucket number, requests, tokens).
Buckets = Iterable[tuple[int, int, int]]


def refused(
    limits: tuple[int, int, int, int, int],
    tokens: int,
    counts: Counts,
    buckets: Callable[[], Buckets],
    day_end: float,
    now: float,
) -> tuple[float, str] | None:
    """None when one more request of `tokens` fits every window of `limits` (a request larger
    than a whole token window still goes when that window is empty), else (when it frees up,
    which window is full). `buckets` is asked only for a full minute window."""
    rpm, rpd, tpm, tpd, parallel = limits
    minute_requests, minute_tokens, day_requests, day_tokens, in_flight = counts
    if rpm and minute_requests + 1 > rpm and minute_requests > 0:
        live = [(bucket, n) for bucket, n, _ in buckets()]
        return minute_frees_at(live, minute_requests, rpm, 1), "rpm"
    if tpm and minute_tokens + tokens > tpm and minute_tokens > 0:
        live = [(bucket, n) for bucket, _, n in buckets()]
        return minute_frees_at(live, minute_tokens, tpm, tokens), "tpm"
    if rpd and day_requests + 1 > rpd:
        return day_end, "rpd"
    if tpd and day_tokens and day_tokens + tokens > tpd:
        return day_end, "tpd"
    if parallel and in_flight >= parallel:
        return now + 1.0, "max_parallel"  # frees when a request ends: look again soon
    return None


def share_left(limits: tuple[int, int, int, int, int], counts: Counts) -> float:
    """The share left of the tightest configured window, in [0, 1] (1.0: no limits)."""
    rpm, rpd, tpm, tpd, _ = limits
    minute_requests, minute_tokens, day_requests, day_tokens, _ = counts
    left = 1.0
    if rpm and (share := 1 - minute_requests / rpm) < left:
        left = share
    if tpm and (share := 1 - minute_tokens / tpm) < left:
        left = share
    if rpd and (share := 1 - day_requests / rpd) < left:
        left = share
    if tpd and (share := 1 - day_tokens / tpd) < left:
        left = share
    return left if left > 0.0 else 0.0


def minute_frees_at(buckets: list[tuple[int, int]], used: int, limit: int, need: int) -> float:
    """When enough of a full minute window (`used` of `limit`, `need` more asked for) has freed
    up: its oldest buckets (bucket number, count) leaving it one by one."""
    freed = 0
    for bucket, count in sorted(buckets):
        freed += count
        if used - freed + need <= limit or used - freed <= 0:
            return bucket_frees_at(bucket)
    return bucket_frees_at(max(bucket for bucket, _ in buckets))
