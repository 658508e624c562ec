"""Configuration of key health: where it is shared (`health:` in the gateway config) and the
fault windows of keys and endpoints (`retry.key_faults`, `retry.endpoint_faults`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


def effective_health(config: Any) -> HealthConfig:
    """The `health:` section; when a config sets none but keeps its state in Redis (`state:
    {backend: redis}`), cooldowns and degraded keys follow it there too: one `state:` section
    for all shared state (issue 13), under `<state prefix>health:`."""
    state = config.state
    if "health" in config.model_fields_set or state is None or state.backend != "redis":
        return config.health
    return HealthConfig(
        backend="redis", redis_url=state.redis_url, key_prefix=state.key_prefix + "health:"
    )


#: The most recent attempts a fault window can look at: each is 8 bytes of a unit's table slot.
MAX_FAULT_WINDOW = 32


class FaultWindowConfig(BaseModel):
    """Upstream faults (5xx, 529, timeouts, connection errors) that degrade a unit: `failures`
    of its last `attempts` attempts failed, all within `window_s` seconds. Degraded for
    `cooldown_s`, doubled for each repeat that starts within `window_s` of the last one's end
    (up to `retry.cooldown_max_s`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=5, ge=1, le=MAX_FAULT_WINDOW)
    attempts: int = Field(default=10, ge=1, le=MAX_FAULT_WINDOW)
    window_s: float = Field(default=60.0, gt=0, le=86_400)
    cooldown_s: float = Field(default=30.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _failures_fit_the_window(self) -> FaultWindowConfig:
        if self.failures > self.attempts:
            raise ValueError(
                f"failures ({self.failures}) cannot exceed attempts ({self.attempts}): "
                f"it counts the failed ones among the last {self.attempts} attempts"
            )
        return self


#: An endpoint (provider × base URL) with 5 faults in its last 10 attempts within a minute is
#: tried after the healthy ones for 30 s; a key likewise is out for 10 s (20 s, 40 s, … on repeat).
DEFAULT_ENDPOINT_FAULTS = FaultWindowConfig()
DEFAULT_KEY_FAULTS = FaultWindowConfig(cooldown_s=10.0)
