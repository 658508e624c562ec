"""A virtual key's fields, the key itself and its hash.

The key is `sk-apex-` + 43 URL-safe characters (256 random bits). The store keeps only its
SHA-256 (domain-separated) and its first 12 characters (the `prefix` shown by `keys list` so a
person can tell their keys apart): with 256 random bits a plain hash is as one-way as a keyed
one, and no secret pepper has to be configured and kept identical on every replica.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KEY_PREFIX = "sk-apex-"
SHOWN_PREFIX_LENGTH = 12
_HASH_DOMAIN = b"apex-ai-proxy/virtual-key\0"
DAY_S = 86_400
MAX_LIMIT = 10**12

Period = Literal["1d", "7d", "30d", "never"]
PERIOD_DAYS = {"1d": 1, "7d": 7, "30d": 30}

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_RESERVED_NAME = re.compile(r"^(token|admin)-\d+$")
_DURATION = re.compile(r"^(\d{1,5})([dhm])$")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_id() -> str:
    return "vk_" + uuid.uuid4().hex[:20]


def hash_key(key: str) -> str:
    return hashlib.sha256(_HASH_DOMAIN + key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(given: str) -> bool:
    return given.startswith(KEY_PREFIX) and 40 <= len(given) <= 80


def parse_expiry(value: str, now: float | None = None) -> float:
    """`30d`, `12h`, `90m` from now, or a date / datetime (ISO 8601, UTC when no zone)."""
    now = time.time() if now is None else now
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + amount * {"d": DAY_S, "h": 3600, "m": 60}[unit]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "expires: a duration such as 30d, 12h, 90m or a date such as 2027-01-31"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class KeyFields(BaseModel):
    """What a person may set on a key (CLI flags and the admin API's JSON): every field
    optional, so the same model checks a create and an update (PATCH: only the fields sent)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    models: list[str] | None = Field(default=None, max_length=1000)  # None: every model
    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    rpd: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    max_parallel: int | None = Field(default=None, ge=1, le=1_000_000)
    budget: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    budget_period: Period | None = None
    expires_at: float | None = Field(default=None, ge=0, le=1e11, allow_inf_nan=False)
    metadata: dict[str, str] | None = Field(default=None, max_length=64)
    priority: int | None = Field(default=None, ge=0, le=100)  # stored; fair share: not built

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: list[str] | None) -> list[str] | None:
        if models is None:
            return None
        for name in models:
            if not name or len(name) > 256 or not name.isprintable():
                raise ValueError("a model name is 1 to 256 printable characters")
        return sorted(set(models))

    @field_validator("name")
    @classmethod
    def _not_a_token_name(cls, name: str | None) -> str | None:
        # token-N and admin-N name gateway and admin tokens in records and own their stored
        # responses: a key by such a name would be mistaken for one.
        if name is not None and _RESERVED_NAME.match(name):
            raise ValueError("names like token-1 and admin-1 are the gateway's own")
        return name

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, meta: dict[str, str] | None) -> dict[str, str] | None:
        for k, v in (meta or {}).items():
            if not k or len(k) > 64 or len(v) > 512 or not (k + v).isprintable():
                raise ValueError("metadata: keys of 1 to 64, values up to 512 printable characters")
        return meta


@dataclass(slots=True)
class VirtualKey:
    """One key as the store holds it (never the key itself: `key_hash` and `prefix`)."""

    id: str
    name: str
    key_hash: str
    prefix: str
    created_at: float
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_parallel: int | None = None
    budget: float | None = None
    budget_period: str = "never"
    expires_at: float | None = None
    revoked_at: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    priority: int | None = None
    spend_total: float = 0.0
    updated_at: float = 0.0

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def limits(self) -> tuple[int, int, int, int, int]:
        """(rpm, rpd, tpm, tpd, max_parallel), 0 = none: the keypool ledger's form."""
        return (self.rpm or 0, self.rpd or 0, self.tpm or 0, 0, self.max_parallel or 0)

    def period_start_day(self, now: float) -> int:
        """First day (days since the epoch, UTC) of the budget period holding `now`: periods
        of 1, 7 or 30 days run from the key's creation day; "never" has one period."""
        created = int(self.created_at // DAY_S)
        days = PERIOD_DAYS.get(self.budget_period)
        if days is None:
            return created
        today = int(now // DAY_S)
        return created + max(today - created, 0) // days * days

    def period_resets_at(self, now: float) -> float | None:
        days = PERIOD_DAYS.get(self.budget_period)
        if days is None:
            return None
        return (self.period_start_day(now) + days) * DAY_S

    def public(self, now: float, spend: float | None = None) -> dict[str, Any]:
        """What `keys list|show` and the admin API show: everything but the hash."""
        out = {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "state": self.state(now),
            "models": self.models,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "rpd": self.rpd,
            "max_parallel": self.max_parallel,
            "budget": self.budget,
            "budget_period": self.budget_period,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "priority": self.priority,
            "spend_total": round(self.spend_total, 10),
        }
        if spend is not None:
            out["period_spend"] = round(spend, 10)
            out["period_resets_at"] = self.period_resets_at(now)
        return out


SETTABLE = tuple(KeyFields.model_fields)


def apply(key: VirtualKey, fields: KeyFields) -> None:
    """Set the fields that were given (an update: unsent fields stay)."""
    for name in fields.model_fields_set:
        value = getattr(fields, name)
        if name == "budget_period" and value is None:
            value = "never"
        if name == "metadata" and value is None:
            value = {}
        setattr(key, name, value)
