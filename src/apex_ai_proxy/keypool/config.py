"""Configuration of the key pool: `limits:` (on a provider, a key or a model entry) and `state:`.

    providers:
      gemini:
        kind: gemini
        limits: {rpm: 10, rpd: 250, reset_timezone: America/Los_Angeles}
        api_keys:
          - ${GEMINI_KEY_A}
          - {key: "${GEMINI_KEY_B}", limits: {rpm: 15}}   # this key's own rpm
    state: {backend: redis, redis_url: redis://127.0.0.1:6379, key_prefix: "apex:state:"}

Limits merge field by field, the most specific wins: model entry over key over provider (a key
that says only `rpm` keeps the provider's `rpd`). Unset fields mean "no configured limit".
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apex_ai_proxy.state.config import checked_redis_url, default_redis_url

#: Far above any real quota, low enough that sums and Lua's doubles stay exact.
MAX_LIMIT = 10**12


class Limits(BaseModel):
    """Configured limits of one key × model. Every field optional: None = not limited here."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)  # requests per minute
    rpd: int | None = Field(default=None, ge=1, le=MAX_LIMIT)  # requests per day
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)  # tokens per minute
    tpd: int | None = Field(default=None, ge=1, le=MAX_LIMIT)  # tokens per day
    max_parallel: int | None = Field(default=None, ge=1, le=1_000_000)  # requests in flight
    #: Where "a day" ends (an IANA zone name). Gemini's free tier: America/Los_Angeles.
    reset_timezone: str | None = Field(default=None, max_length=64)

    @field_validator("reset_timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        if name is None:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # ValueError/OSError: names like "../etc" or with NUL bytes; never echo a long value
            raise ValueError(
                f"unknown time zone {name[:64]!r} (an IANA name such as 'UTC' or "
                "'America/Los_Angeles')"
            ) from None
        return name

    def merged_over(self, base: Limits | None) -> Limits:
        """These limits with every unset field taken from `base` (the less specific level)."""
        if base is None:
            return self
        mine = self.model_dump(exclude_none=True)
        return Limits.model_validate(base.model_dump(exclude_none=True) | mine)

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


NO_LIMITS = Limits()


def resolve_limits(*levels: Limits | None) -> Limits:
    """Merge from least to most specific: resolve_limits(provider, key, model_entry)."""
    out = NO_LIMITS
    for level in levels:
        if level is not None:
            out = level.merged_over(out)
    return out


class KeyEntry(BaseModel):
    """One of `api_keys:`: a plain string, or `{key: ..., limits: {...}}` with its own limits."""

    # hide_input_in_errors: the rejected input is an API key.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    key: str = Field(repr=False)
    limits: Limits | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, value: object) -> object:
        # A plain string is the common form; one model keeps error paths short
        # (`api_keys[1].limits.rpm`, not one error per member of a union).
        return {"key": value} if isinstance(value, str) else value


class StateConfig(BaseModel):
    """Where key state lives: health, learned quotas, counters (`state:` in the gateway config)."""

    # hide_input_in_errors: a rejected redis_url may carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    backend: Literal["local", "redis"] = "local"
    redis_url: str = Field(default_factory=default_redis_url, repr=False)
    #: Replicas that share quotas share this prefix (and their config).
    key_prefix: str = Field(default="apex:state:", min_length=1, max_length=200)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        return checked_redis_url(url)
