"""What an upstream answer says about the key × model that sent it.

Read from the status, the headers and (for errors only) the body:

- OpenAI and the many OpenAI-compatible upstreams: `x-ratelimit-{limit,remaining,reset}-
  {requests,tokens}`, the reset as a duration ("1s", "6m0s", "20ms", "1h2m3.5s").
- Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
  reset}`, the reset as an RFC 3339 time.
- `Retry-After`: seconds or an HTTP date.
- Gemini's 429 body: `google.rpc.QuotaFailure` violations whose `quotaId` names the window
  (`...PerMinute...`, `...PerDay...`) and `google.rpc.RetryInfo.retryDelay` ("39s").

Every input is hostile: nothing here raises, whatever the bytes; a value that cannot be read is
ignored, and every time is clamped to at most MAX_HORIZON_S ahead.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import orjson

#: No signal holds a key out for longer than this (a daily quota resets within 25 hours).
MAX_HORIZON_S = 26 * 3600.0
#: Error bodies are read up to this size; a quota detail is never larger.
MAX_BODY_BYTES = 64 * 1024
_MAX_NUMBER_DIGITS = 15


class Verdict(enum.Enum):
    OK = "ok"  # answered; the key works
    RATE_LIMITED = "rate_limited"  # out for a short window (until)
    QUOTA_EXHAUSTED = "quota_exhausted"  # out until a daily reset (until)
    INVALID = "invalid"  # key rejected: quarantine
    UPSTREAM_FAULT = "upstream_fault"  # 5xx, overload, timeout: the provider's, never the key's
    CLIENT_ERROR = "client_error"  # the request's fault: says nothing about the key


@dataclass(frozen=True, slots=True)
class Window:
    """A learned window: how much is left and when it is whole again (epoch seconds)."""

    limit: int | None
    remaining: int | None
    reset_at: float | None


@dataclass(frozen=True, slots=True)
class Signal:
    verdict: Verdict
    until: float | None = None  # epoch seconds the key × model is out until; None: not out
    requests: Window | None = None
    tokens: Window | None = None
    reason: str = ""  # short, fixed words: safe for logs, records and metric labels


_PLAIN_OK = Signal(Verdict.OK)

#: Upstream-fault statuses: overload and server errors say nothing about a key's quota.
_FAULT_STATUSES = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
_INVALID_KEY_MARKERS = (b"api_key_invalid", b"invalid_api_key", b"api key not valid")


def read_signal(
    status: int | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    body: bytes | None,
    now: float,
    daily_reset: Callable[[float], float],
) -> Signal:
    """Classify one answer. `status` None: no answer (timeout, connection error).
    `daily_reset(now)`: when the key's day ends (its provider's time zone)."""
    try:
        return _read(status, headers, body, now, daily_reset)
    except Exception:  # noqa: BLE001 - a parser bug must not fail a request; classify coarsely
        return _coarse(status)


def _coarse(status: int | None) -> Signal:
    if status is None or status >= 500 or status in _FAULT_STATUSES:
        return Signal(Verdict.UPSTREAM_FAULT, reason="upstream_fault")
    if status == 429:
        return Signal(Verdict.RATE_LIMITED, reason="rate_limited")
    if status in (401, 403):
        return Signal(Verdict.INVALID, reason="invalid_key")
    return Signal(Verdict.OK if status < 400 else Verdict.CLIENT_ERROR)


def _read(status, headers, body, now, daily_reset) -> Signal:
    if status is None or status in _FAULT_STATUSES or status >= 500:
        return Signal(Verdict.UPSTREAM_FAULT, reason="upstream_fault")
    found = _relevant_headers(headers)
    if not found and status < 400:
        return _PLAIN_OK  # the common success: no windows to learn, nothing spent
    requests, tokens = _openai_windows(found, now)
    if requests is None and tokens is None:
        requests, tokens = _anthropic_windows(found, now)
    if status in (401, 403):
        return Signal(Verdict.INVALID, reason="invalid_key")
    text = _bounded(body) if status >= 400 else b""
    if status == 400 and any(marker in text.lower() for marker in _INVALID_KEY_MARKERS):
        return Signal(Verdict.INVALID, reason="invalid_key")  # Gemini: 400 API_KEY_INVALID
    if status == 429:
        return _too_many(found, text, now, daily_reset, requests, tokens)
    if status >= 400:
        return Signal(Verdict.CLIENT_ERROR, requests=requests, tokens=tokens)
    # A success that spent the last request of a window: out until that window resets.
    until = _exhausted_until(now, requests, tokens)
    if until is not None:
        return Signal(Verdict.RATE_LIMITED, until, requests, tokens, "window_spent")
    return Signal(Verdict.OK, requests=requests, tokens=tokens)


def _too_many(found, text, now, daily_reset, requests, tokens) -> Signal:
    per_day, per_minute, retry_delay = _gemini_details(text)
    if per_day or b"insufficient_quota" in text:
        # Per-day quota (Gemini) or no credit left (OpenAI): waiting seconds will not help.
        return Signal(
            Verdict.QUOTA_EXHAUSTED, _clamp(daily_reset(now), now), requests, tokens, "daily_quota"
        )
    candidates = [
        _exhausted_until(now, requests, tokens),
        _after(now, retry_delay),
        _after(now, parse_retry_after(found.get("retry-after"), now)),
    ]
    known = [c for c in candidates if c is not None]
    until = max(known) if known else None
    reason = "minute_quota" if per_minute else "rate_limited"
    return Signal(Verdict.RATE_LIMITED, until, requests, tokens, reason)


#: Header names seen in answers, none of which names a rate limit: bounded (upstreams choose
#: names), and most answers carry only names from here.
_QUIET_NAMES: set[str] = set()
_MAX_QUIET_NAMES = 1024


def says_nothing(status: int, headers: Mapping[str, str] | None) -> bool:
    """Whether read_signal would find a plain success here: a 1xx-3xx status and no header
    that names a rate limit. The common answer: the key pool asks this on every request and
    reads the signal only when it is False."""
    if status >= 400:
        return False
    if headers is None:
        return True
    if not isinstance(headers, dict):
        return False
    if headers.keys() <= _QUIET_NAMES:  # names seen before: one set operation
        return True
    if _may_name_limits(headers):
        return False
    if len(_QUIET_NAMES) < _MAX_QUIET_NAMES:
        _QUIET_NAMES.update(headers)
    return True


def _may_name_limits(headers: dict) -> bool:
    """Whether any name of a dict of headers (many names, seldom a rate-limit one) may be a
    rate-limit header: all names looked at at once (C string operations)."""
    try:
        names = "\n".join(headers).lower()
    except TypeError:  # a name that is not a str
        return True
    return "ratelimit" in names or "retry-after" in names


def _relevant_headers(headers) -> dict[str, str]:
    """The rate-limit headers by lower-case name; anything else (or not a str) is dropped."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(headers, dict):
        # The HTTP client's headers: only those that may be a rate-limit one go through the
        # checks below (any name not a str does).
        if not _may_name_limits(headers):
            return {}
        items = [
            item
            for item in items
            if not isinstance(name := item[0], str)
            or "ratelimit" in (low := name.lower())
            or low == "retry-after"
        ]
    found: dict[str, str] = {}
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            continue
        name, value = item
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(name, str) or not isinstance(value, str) or len(value) > 128:
            continue
        name = name.lower()
        if "ratelimit" in name or name == "retry-after":
            found[name] = value
    return found


_PARTS = ("limit", "remaining", "reset")


def _names(pattern: str, kind: str) -> tuple[str, str, str]:
    limit, remaining, reset = (pattern.format(kind=kind, part=p) for p in _PARTS)
    return limit, remaining, reset


_OPENAI = {k: _names("x-ratelimit-{part}-{kind}", k) for k in ("requests", "tokens")}
_ANTHROPIC = {
    k: _names("anthropic-ratelimit-{kind}-{part}", k)
    for k in ("requests", "tokens", "input-tokens", "output-tokens")
}


def _openai_windows(found: dict[str, str], now: float) -> tuple[Window | None, Window | None]:
    def window(kind: str) -> Window | None:
        limit_name, remaining_name, reset_name = _OPENAI[kind]
        limit = parse_count(found.get(limit_name))
        remaining = parse_count(found.get(remaining_name))
        reset = _after(now, parse_duration(found.get(reset_name)))
        if limit is None and remaining is None and reset is None:
            return None
        return Window(limit, remaining, reset)

    if not found:
        return None, None
    return window("requests"), window("tokens")


def _anthropic_windows(found: dict[str, str], now: float) -> tuple[Window | None, Window | None]:
    def window(kind: str) -> Window | None:
        limit_name, remaining_name, reset_name = _ANTHROPIC[kind]
        limit = parse_count(found.get(limit_name))
        remaining = parse_count(found.get(remaining_name))
        reset = parse_rfc3339(found.get(reset_name))
        reset = None if reset is None else _clamp(reset, now)
        if limit is None and remaining is None and reset is None:
            return None
        return Window(limit, remaining, reset)

    if not found:
        return None, None
    token_windows = [w for k in ("tokens", "input-tokens", "output-tokens") if (w := window(k))]
    # The tightest token window decides (the least remaining).
    tokens = min(
        token_windows,
        key=lambda w: w.remaining if w.remaining is not None else float("inf"),
        default=None,
    )
    return window("requests"), tokens


def _exhausted_until(now: float, *windows: Window | None) -> float | None:
    ends = [
        w.reset_at
        for w in windows
        if w is not None and w.remaining == 0 and w.reset_at is not None and w.reset_at > now
    ]
    return max(ends) if ends else None


def _gemini_details(text: bytes) -> tuple[bool, bool, float | None]:
    """(a per-day violation, a per-minute violation, RetryInfo's delay) from a Gemini error."""
    if b"google.rpc" not in text:
        return False, False, None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False, False, None
    if isinstance(parsed, list) and parsed:  # some Google APIs wrap the error in a list
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    per_day = per_minute = False
    delay = None
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        if not isinstance(kind, str):
            continue
        if kind.endswith("google.rpc.QuotaFailure"):
            violations = detail.get("violations")
            for violation in violations if isinstance(violations, list) else ():
                quota_id = violation.get("quotaId") if isinstance(violation, dict) else None
                if isinstance(quota_id, str):
                    per_day |= "PerDay" in quota_id
                    per_minute |= "PerMinute" in quota_id
        elif kind.endswith("google.rpc.RetryInfo"):
            retry = detail.get("retryDelay")
            delay = parse_duration(retry) if isinstance(retry, str) else None
    return per_day, per_minute, delay


def _bounded(body: bytes | None) -> bytes:
    if not isinstance(body, bytes | bytearray | memoryview):
        return b""
    return bytes(body[:MAX_BODY_BYTES])


def _clamp(when: float, now: float) -> float:
    return min(max(when, now), now + MAX_HORIZON_S)


def _after(now: float, seconds: float | None) -> float | None:
    return None if seconds is None else _clamp(now + seconds, now)


# --- value parsers: each returns None for anything it cannot read ------------------------------

_DURATION = re.compile(
    r"(?:(\d{1,9}(?:\.\d{1,9})?)h)?(?:(\d{1,9}(?:\.\d{1,9})?)m(?!s))?"
    r"(?:(\d{1,9}(?:\.\d{1,9})?)s)?(?:(\d{1,9}(?:\.\d{1,9})?)ms)?"
)


def parse_duration(value: str | None) -> float | None:
    """A Go-style duration ("6m0s", "1s", "20ms", "1h2m3.5s", "36.42976s") in seconds."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse_count(value: str | None) -> int | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_NUMBER_DIGITS:
        return None
    return int(value)


def parse_rfc3339(value: str | None) -> float | None:
    if not isinstance(value, str) or not 10 <= len(value) <= 40 or not value.isascii():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:  # RFC 3339 always has an offset; a local time means nothing here
        return None
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date; None if unreadable."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    value = value.strip()
    if value.isascii() and value.replace(".", "", 1).isdigit() and len(value) <= 15:
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
