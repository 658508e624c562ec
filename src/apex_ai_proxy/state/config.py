"""Configuration of the stored-responses backend (`responses_store:` in the gateway config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
THIRTY_DAYS = 30 * 24 * 3600.0

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def default_redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def checked_redis_url(url: str) -> str:
    """`url` when its scheme is one redis-py opens (the `redis_url` of every section that has
    one: state, health, responses_store), else the ValueError pydantic reports with its path."""
    scheme = urlsplit(url).scheme
    if scheme not in _REDIS_SCHEMES:
        raise ValueError(
            "redis_url must start with redis://, rediss:// or unix://, "
            f"got {scheme + '://' if scheme else 'no scheme'}"
        )
    return url


def redacted_redis_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class ResponsesStoreConfig(BaseModel):
    # hide_input_in_errors: a rejected redis_url may carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    backend: Literal["sqlite", "redis"] = "sqlite"
    #: SQLite file, shared by every worker process of one gateway.
    path: Path = Path("apex-responses.db")
    redis_url: str = Field(default_factory=default_redis_url, repr=False)
    #: How long a response stays retrievable after it was stored.
    ttl_seconds: float = Field(default=THIRTY_DAYS, gt=0)
    #: Redis key prefix; give each gateway sharing one Redis its own.
    key_prefix: str = Field(default="apex:responses:", min_length=1)
    #: SQLite: how often expired rows are deleted (expired rows are invisible at once).
    prune_interval_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        return checked_redis_url(url)
