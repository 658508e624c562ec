"""Key fields from the admin API's JSON and from the CLI's flags, into one KeyFields.

Both accept `expires` as a duration (30d, 12h) or a date, `budget_period` as 1d|7d|30d|never,
and everything KeyFields holds; a bad value raises ValueError with a message for the person
(never a traceback, never the key).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from apex_ai_proxy.virtualkeys.model import KeyFields, parse_expiry


def fields_from_json(data: Any, now: float | None = None) -> KeyFields:
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    data = dict(data)
    if "expires" in data:
        expires = data.pop("expires")
        if expires is None:
            data["expires_at"] = None
        elif isinstance(expires, str) and len(expires) <= 64:
            data["expires_at"] = parse_expiry(expires, now)
        else:
            raise ValueError("expires: a duration such as 30d or a date such as 2027-01-31")
    if isinstance(data.get("budget"), int) and not isinstance(data["budget"], bool):
        data["budget"] = float(data["budget"])
    if isinstance(data.get("expires_at"), int) and not isinstance(data["expires_at"], bool):
        data["expires_at"] = float(data["expires_at"])
    try:
        return KeyFields.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """The first few problems, each as `field: message` (input values left out: they may be
    long or hold something pasted by mistake)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_since(value: str | None, now: float | None = None) -> float:
    """`?since=`: epoch seconds, a date (2026-12-01) or a duration back from now (7d);
    default: 30 days back."""
    now = time.time() if now is None else now
    if not value:
        return now - 30 * 86_400
    if len(value) > 64:
        raise ValueError("since: too long")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number != number or not 0 <= number <= 1e11:
            raise ValueError("since: epoch seconds between 0 and 1e11")
        return number
    back = parse_expiry(value, 0.0)  # a duration gives seconds from 0, a date its epoch
    if value.strip()[-1:] in ("d", "h", "m") and back < 1e9:
        return now - back
    return back
