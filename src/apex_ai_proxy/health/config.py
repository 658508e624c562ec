"""Configuration of shared key health (`health:` in the gateway config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apex_ai_proxy.state.config import checked_redis_url, default_redis_url


class HealthConfig(BaseModel):
    # hide_input_in_errors: a rejected redis_url may carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: local: cooldowns shared by the workers of one gateway only; redis: by every replica too.
    backend: Literal["local", "redis"] = "local"
    redis_url: str = Field(default_factory=default_redis_url, repr=False)
    #: Redis key and channel prefix; replicas that share cooldowns share it (and their config).
    key_prefix: str = Field(default="apex:health:", min_length=1)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        return checked_redis_url(url)
